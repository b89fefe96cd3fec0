// The InternLM2 slow tokenizer as InternVL-Chat-V1.5 uses it: transformers 4.36/4.37
// `PreTrainedTokenizer.tokenize/_decode` + remote-code `tokenization_internlm2.InternLM2Tokenizer`.
// SentencePiece-BPE encoding of each plain chunk runs through @huggingface/tokenizers; added-token splitting,
// BOS and the whole decode path are done here because their exact rules are the slow tokenizer's own.
import type { Tokenizer } from "@huggingface/tokenizers";
import { AddedTokenSplitter } from "./added_token_splitter.ts";
import { cleanUpTokenization, pythonLstrip, pythonRstrip, pythonStrip } from "./python_text.ts";
import type { PieceDecoder } from "./sentencepiece_decode.ts";

/** The three tokens whose ids mark where image features go; user text must never produce them. */
export const IMAGE_TOKENS = { img: "<img>", imgEnd: "</img>", imgContext: "<IMG_CONTEXT>" } as const;
/** The separator of the internlm2-chat template; `chat()` cuts the response at its first occurrence. */
export const IM_END = "<|im_end|>";
export const IM_START = "<|im_start|>";

export interface AddedTokenInfo {
  id: number;
  content: string;
  lstrip: boolean;
  rstrip: boolean;
}

export interface SpecialIds {
  bos: number;
  eos: number;
  pad: number;
  unk: number;
  imStart: number;
  imEnd: number;
  img: number;
  imgEnd: number;
  imgContext: number;
}

export interface EncodeOptions {
  /** prepend `<s>` (default: tokenizer_config.json's add_bos_token) */
  addBos?: boolean;
  /** append `</s>` (default: tokenizer_config.json's add_eos_token, false for InternVL) */
  addEos?: boolean;
  /**
   * Split `<img>`, `</img>`, `<IMG_CONTEXT>` typed in `text` into their ids, as the reference does with
   * the whole prompt. Default false: prompts insert image ids structurally (chat_template.ts), so typed
   * text stays text and can never claim an image slot.
   */
  allowImageTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

/** Everything load_tokenizer.ts resolves from the model directory. */
export interface ChatTokenizerParts {
  /** SentencePiece BPE for plain text chunks (its own added-token handling is bypassed) */
  bpe: Tokenizer;
  /** decodes runs of SentencePiece pieces */
  pieceDecoder: PieceDecoder;
  /** id → SentencePiece piece, for ids below sentencePieceSize */
  pieces: readonly string[];
  /** `sp_model.get_piece_size()`, the slow tokenizer's `vocab_size` */
  sentencePieceSize: number;
  /** tokenizer_config.json added_tokens_decoder + added_tokens.json */
  addedTokens: readonly AddedTokenInfo[];
  /** SentencePiece USER_DEFINED pieces, which SentencePiece itself never splits */
  userDefinedPieces: readonly string[];
  bosToken: string;
  eosToken: string;
  unkToken: string;
  padToken: string;
  additionalSpecialTokens: readonly string[];
  addBosToken: boolean;
  addEosToken: boolean;
  cleanUpTokenizationSpaces: boolean;
  /** SentencePiece drops a whitespace-only input entirely when it removes extra whitespace */
  dropBlankChunks: boolean;
}

export class ChatTokenizer {
  /** number of ids (SentencePiece pieces + appended added tokens) = rows of the embedding table */
  readonly vocabSize: number;
  readonly specialIds: SpecialIds;
  readonly #p: ChatTokenizerParts;
  readonly #added = new Map<string, AddedTokenInfo>();
  readonly #addedById = new Map<number, string>();
  readonly #allSpecialTokens: Set<string>;
  readonly #allSpecialIds: Set<number>;
  /** added tokens decoded as their own sub-texts (`legacy_added_tokens` in `_decode`) */
  readonly #standalone: Set<string>;
  readonly #splitAll: AddedTokenSplitter;
  readonly #splitNoImage: AddedTokenSplitter;

  constructor(parts: ChatTokenizerParts) {
    this.#p = parts;
    for (const t of parts.addedTokens) {
      this.#added.set(t.content, t);
      this.#addedById.set(t.id, t.content);
    }
    let maxId = parts.sentencePieceSize - 1;
    for (const t of parts.addedTokens) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    // `all_special_tokens`: bos, eos, unk, pad and additional_special_tokens.
    this.#allSpecialTokens = new Set([
      parts.bosToken,
      parts.eosToken,
      parts.unkToken,
      parts.padToken,
      ...parts.additionalSpecialTokens,
    ]);
    this.#allSpecialIds = new Set([...this.#allSpecialTokens].map((t) => this.tokenToId(t)));
    // (added − special) ∪ {additional special tokens appended past the SentencePiece vocab}
    this.#standalone = new Set(
      [...this.#added.keys()].filter((t) => !this.#allSpecialTokens.has(t)),
    );
    for (const t of parts.additionalSpecialTokens) {
      if (this.tokenToId(t) >= parts.sentencePieceSize) this.#standalone.add(t);
    }
    const atomic = [...this.#added.keys(), ...parts.userDefinedPieces];
    const imageTokens = new Set<string>(Object.values(IMAGE_TOKENS));
    this.#splitAll = new AddedTokenSplitter(atomic);
    this.#splitNoImage = new AddedTokenSplitter(atomic.filter((t) => !imageTokens.has(t)));
    this.specialIds = {
      bos: this.tokenToId(parts.bosToken),
      eos: this.tokenToId(parts.eosToken),
      pad: this.tokenToId(parts.padToken),
      unk: this.tokenToId(parts.unkToken),
      imStart: this.tokenToId(IM_START),
      imEnd: this.tokenToId(IM_END),
      img: this.tokenToId(IMAGE_TOKENS.img),
      imgEnd: this.tokenToId(IMAGE_TOKENS.imgEnd),
      imgContext: this.tokenToId(IMAGE_TOKENS.imgContext),
    };
  }

  /** `tokenizer(text).input_ids`: split on added tokens, SentencePiece per chunk, then `<s>`. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (opts.addBos ?? this.#p.addBosToken) ids.push(this.specialIds.bos);
    const chunks = (opts.allowImageTokens ? this.#splitAll : this.#splitNoImage).split(text);
    // AddedToken lstrip/rstrip eat whitespace next to the token (all false in InternVL's files).
    for (let i = 0; i < chunks.length; i++) {
      const tok = chunks[i].token;
      if (tok === undefined) continue;
      const info = this.#added.get(tok);
      const prev = chunks[i - 1];
      const next = chunks[i + 1];
      if (info?.lstrip && prev?.text !== undefined) chunks[i - 1] = { text: pythonRstrip(prev.text) };
      if (info?.rstrip && next?.text !== undefined) chunks[i + 1] = { text: pythonLstrip(next.text) };
    }
    for (const c of chunks) {
      if (c.token !== undefined) ids.push(this.tokenToId(c.token));
      else if (c.text.length > 0) ids.push(...this.#encodeChunk(c.text));
    }
    if (opts.addEos ?? this.#p.addEosToken) ids.push(this.specialIds.eos);
    return ids;
  }

  /** `sp_model.encode(chunk)` through the converted BPE: normalizer → pre-tokenizer → BPE model. */
  #encodeChunk(text: string): number[] {
    if (this.#p.dropBlankChunks && /^ *$/.test(text)) return [];
    const { normalizer, pre_tokenizer, model } = this.#p.bpe;
    const normalized = normalizer ? normalizer(text) : text;
    const words = pre_tokenizer ? pre_tokenizer(normalized) : [normalized];
    const tokens = model!(words);
    return tokens.map((t) => {
      const id = model!.tokens_to_ids.get(t);
      if (id === undefined) throw new Error(`BPE produced ${JSON.stringify(t)}, which has no id`);
      return id;
    });
  }

  /** `tokenizer.decode(ids, skip_special_tokens=…)` of the slow InternLM2 tokenizer. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const { settled, open } = this.#subTexts(ids, opts.skipSpecialTokens ?? false);
    if (open.length > 0) settled.push(cleanUpTokenization(this.#tokensToRawString(open)));
    // spaces_between_special_tokens=True
    const text = settled.join(" ");
    return this.#p.cleanUpTokenizationSpaces ? cleanUpTokenization(text) : text;
  }

  /**
   * The skip-special decode split where later ids can still change it, for ResponseStream:
   * `decode(ids, {skipSpecialTokens: true})` equals `settled` + (" " if both are non-empty) +
   * `cleanUpTokenization(openRaw)`. `settled` is final; `openRaw` is the still-open run of pieces before
   * clean_up_tokenization (null when no run is open). Assumes clean_up_tokenization_spaces=False (InternVL).
   */
  decodeOpenTail(ids: readonly number[]): { settled: string; openRaw: string | null } {
    const { settled, open } = this.#subTexts(ids, true);
    return { settled: settled.join(" "), openRaw: open.length > 0 ? this.#tokensToRawString(open) : null };
  }

  /**
   * `_decode`'s loop: added tokens outside `all_special_tokens` (and InternVL's, appended past the
   * SentencePiece vocab) become sub-texts of their own; the runs between them are converted as a whole,
   * and a run converting to "" is dropped. Returns the finished sub-texts and the open run's tokens.
   */
  #subTexts(ids: readonly number[], skip: boolean): { settled: string[]; open: string[] } {
    const settled: string[] = [];
    let open: string[] = [];
    for (const id of ids) {
      if (skip && this.#allSpecialIds.has(id)) continue;
      const token = this.idToToken(id);
      if (this.#standalone.has(token)) {
        if (open.length > 0) {
          const s = cleanUpTokenization(this.#tokensToRawString(open));
          if (s.length > 0) settled.push(s);
          open = [];
        }
        settled.push(token);
      } else {
        open.push(token);
      }
    }
    return { settled, open };
  }

  /**
   * InternLM2Tokenizer.convert_tokens_to_string before its final clean_up_tokenization (which the callers
   * apply, always): special tokens are kept verbatim with one space before a run of them. (Its
   * `_maybe_add_prefix_space` prepends a space that the final `[1:]` removes again, so it is left out.)
   */
  #tokensToRawString(tokens: readonly string[]): string {
    let out = "";
    let pieces: string[] = [];
    let prevIsSpecial = false;
    for (const t of tokens) {
      if (this.#allSpecialTokens.has(t)) {
        if (!prevIsSpecial) out += " ";
        out += this.#p.pieceDecoder.decode(pieces) + t;
        pieces = [];
        prevIsSpecial = true;
      } else {
        pieces.push(t);
        prevIsSpecial = false;
      }
    }
    return out + this.#p.pieceDecoder.decode(pieces);
  }

  /** The text `InternVLChatModel.chat()` returns for generated ids (which may end with `<|im_end|>`). */
  responseFromIds(ids: readonly number[]): string {
    return pythonStrip(this.decode(ids, { skipSpecialTokens: true }).split(IM_END)[0]);
  }

  /** Whether `decode(…, {skipSpecialTokens: true})` drops this id (bos/eos/unk/pad and the InternVL tokens). */
  isSpecialId(id: number): boolean {
    return this.#allSpecialIds.has(id);
  }

  /** Id of an added token or SentencePiece piece; throws for anything else. */
  tokenToId(token: string): number {
    const added = this.#added.get(token);
    if (added) return added.id;
    const id = this.#p.bpe.model?.tokens_to_ids.get(token);
    if (id === undefined || id >= this.#p.sentencePieceSize) {
      throw new Error(`Token ${JSON.stringify(token)} is not in the vocabulary`);
    }
    return id;
  }

  /** `convert_ids_to_tokens(id)`: the added token's content, else the SentencePiece piece. */
  idToToken(id: number): string {
    const added = this.#addedById.get(id);
    if (added !== undefined) return added;
    if (!Number.isInteger(id) || id < 0 || id >= this.#p.sentencePieceSize) {
      throw new Error(`Token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    return this.#p.pieces[id];
  }
}
