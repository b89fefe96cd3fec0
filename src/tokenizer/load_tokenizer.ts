// Builds a ChatTokenizer from an HF model directory. The InternVL V1.5 repos ship SentencePiece
// `tokenizer.model` + tokenizer_config.json + special_tokens_map.json + added_tokens.json and no
// tokenizer.json; a tokenizer.json is used when present (e.g. one written by scripts from our converter).
import { Tokenizer } from "@huggingface/tokenizers";
import { ChatTokenizer } from "./chat_tokenizer.ts";
import type { AddedTokenInfo, ChatTokenizerParts } from "./chat_tokenizer.ts";
import { PieceDecoder } from "./sentencepiece_decode.ts";
import { parseSentencePieceModel, PieceType } from "./sentencepiece_model.ts";
import { sentencePieceToTokenizerJson } from "./sentencepiece_to_tokenizer_json.ts";
import type { TokenizerJson } from "./sentencepiece_to_tokenizer_json.ts";

type TokenSpec = string | { content: string } | null | undefined;
type AddedTokenEntry = {
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  special?: boolean;
};

/** The tokenizer_config.json / special_tokens_map.json fields the slow tokenizer reads. */
interface TokenizerConfigFile {
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  added_tokens_decoder?: Record<string, AddedTokenEntry>;
  additional_special_tokens?: TokenSpec[];
  bos_token?: TokenSpec;
  eos_token?: TokenSpec;
  unk_token?: TokenSpec;
  pad_token?: TokenSpec;
  clean_up_tokenization_spaces?: boolean;
}

async function readJson<T>(path: string): Promise<T | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

const tokenContent = (t: TokenSpec): string | undefined =>
  t === null || t === undefined ? undefined : typeof t === "string" ? t : t.content;

/** Loads the tokenizer of the model directory `dir`. */
export async function loadTokenizer(dir: string): Promise<ChatTokenizer> {
  const config = (await readJson<TokenizerConfigFile>(`${dir}/tokenizer_config.json`)) ?? {};
  // from_pretrained lets special_tokens_map.json override the config's special tokens.
  const specialMap = (await readJson<TokenizerConfigFile>(`${dir}/special_tokens_map.json`)) ?? {};
  const addedJson = (await readJson<Record<string, number>>(`${dir}/added_tokens.json`)) ?? {};
  const tokenizerJson = await readJson<TokenizerJson>(`${dir}/tokenizer.json`);

  let model: Omit<ChatTokenizerParts, keyof SharedParts>;
  if (tokenizerJson) {
    model = fromTokenizerJson(tokenizerJson);
  } else {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/tokenizer.model`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Error(
          `${dir} has neither tokenizer.json nor tokenizer.model; point it at the model directory`,
        );
      }
      throw err;
    }
    model = fromSentencePiece(bytes);
  }

  const added = new Map<string, AddedTokenInfo>();
  for (const [id, e] of Object.entries(config.added_tokens_decoder ?? {})) {
    added.set(e.content, { id: Number(id), content: e.content, lstrip: !!e.lstrip, rstrip: !!e.rstrip });
  }
  for (const [content, id] of Object.entries(addedJson)) {
    if (!added.has(content)) added.set(content, { id, content, lstrip: false, rstrip: false });
  }
  const pick = (key: "bos_token" | "eos_token" | "unk_token" | "pad_token", fallback: string) =>
    tokenContent(specialMap[key]) ?? tokenContent(config[key]) ?? fallback;
  // InternLM2Tokenizer's __init__ defaults: <unk>, <s>, </s>, no pad (then pad falls back to eos below).
  const eosToken = pick("eos_token", "</s>");
  const shared: SharedParts = {
    addedTokens: [...added.values()],
    bosToken: pick("bos_token", "<s>"),
    eosToken,
    unkToken: pick("unk_token", "<unk>"),
    padToken: pick("pad_token", eosToken),
    additionalSpecialTokens: (specialMap.additional_special_tokens ?? config.additional_special_tokens ?? [])
      .map(tokenContent)
      .filter((t): t is string => t !== undefined),
    addBosToken: config.add_bos_token ?? true,
    addEosToken: config.add_eos_token ?? false,
    cleanUpTokenizationSpaces: config.clean_up_tokenization_spaces ?? false,
  };
  return new ChatTokenizer({ ...model, ...shared });
}

type SharedParts = Pick<
  ChatTokenizerParts,
  | "addedTokens"
  | "bosToken"
  | "eosToken"
  | "unkToken"
  | "padToken"
  | "additionalSpecialTokens"
  | "addBosToken"
  | "addEosToken"
  | "cleanUpTokenizationSpaces"
>;

function fromSentencePiece(bytes: Uint8Array): Omit<ChatTokenizerParts, keyof SharedParts> {
  const sp = parseSentencePieceModel(bytes);
  return {
    bpe: new Tokenizer(sentencePieceToTokenizerJson(sp), {}),
    pieceDecoder: new PieceDecoder({
      pieces: sp.pieces,
      addDummyPrefix: sp.normalizer.addDummyPrefix,
      removeExtraWhitespaces: sp.normalizer.removeExtraWhitespaces,
      unkSurface: sp.trainer.unkSurface,
    }),
    pieces: sp.pieces.map((p) => p.piece),
    sentencePieceSize: sp.pieces.length,
    userDefinedPieces: sp.pieces.filter((p) => p.type === PieceType.USER_DEFINED).map((p) => p.piece),
    dropBlankChunks: sp.normalizer.removeExtraWhitespaces,
  };
}

/**
 * A tokenizer.json lacks SentencePiece's piece types and normalizer flags, so they are inferred: `<0xXX>`
 * pieces are bytes (with byte_fallback), the unk token is UNKNOWN, other special added tokens inside the
 * vocab are CONTROL, and a Prepend("▁") normalizer or a prepending Metaspace means add_dummy_prefix.
 */
function fromTokenizerJson(json: TokenizerJson): Omit<ChatTokenizerParts, keyof SharedParts> {
  if (json.model?.type !== "BPE") {
    throw new Error(`tokenizer.json has a ${json.model?.type} model; expected BPE`);
  }
  const vocab = json.model.vocab;
  const size = Math.max(...Object.values(vocab)) + 1;
  const pieces: string[] = new Array(size).fill("");
  for (const [piece, id] of Object.entries(vocab)) pieces[id] = piece;
  const special = new Set(
    (json.added_tokens ?? []).filter((t) => t.special && t.id < size).map((t) => t.content),
  );
  const userDefined = (json.added_tokens ?? []).filter((t) => !t.special && t.id < size).map((t) =>
    t.content
  );
  const byteFallback = json.model.byte_fallback;
  const typed = pieces.map((piece) => ({
    piece,
    type: piece === json.model.unk_token
      ? PieceType.UNKNOWN
      : byteFallback && /^<0x[0-9A-F]{2}>$/.test(piece)
      ? PieceType.BYTE
      : special.has(piece)
      ? PieceType.CONTROL
      : PieceType.NORMAL,
  }));
  const configText = JSON.stringify([json.normalizer, json.pre_tokenizer]);
  const addDummyPrefix = /"type":"Prepend","prepend":"\u2581"/.test(configText) ||
    /"type":"Metaspace"[^}]*"(prepend_scheme":"(always|first)|add_prefix_space":true)/.test(configText);
  return {
    bpe: new Tokenizer(json, {}),
    pieceDecoder: new PieceDecoder({
      pieces: typed,
      addDummyPrefix,
      removeExtraWhitespaces: false,
      unkSurface: " \u2047 ",
    }),
    pieces,
    sentencePieceSize: size,
    userDefinedPieces: userDefined,
    dropBlankChunks: false,
  };
}
