// Converts a SentencePiece BPE model into a `tokenizer.json`-shaped object that @huggingface/tokenizers
// loads (BPE model + normalizer + pre-tokenizer + decoder), so that encoding through it yields exactly the
// ids `SentencePieceProcessor.encode` yields for the same text.
//
// Why the merges look the way they do: SentencePiece BPE (`bpe_model.cc`) does not store merges. Starting
// from one symbol per code point it repeatedly merges the adjacent pair whose concatenation is a vocab
// piece with the HIGHEST score, leftmost pair first on ties. HF BPE merges the pair with the LOWEST rank,
// leftmost first on ties. So every split `piece = left + right` (both sides reachable symbols) becomes a
// merge, ranked by the piece's score (descending). Scores of trained BPE pieces are distinct (-order of
// creation), which makes both procedures pick the same pair at every step.
import type { SentencePieceModel } from "./sentencepiece_model.ts";
import { PieceType } from "./sentencepiece_model.ts";

const SPACE_SYMBOL = "\u2581"; // ▁, SentencePiece's escaped space

/** The fields of tokenizer.json that @huggingface/tokenizers reads. */
export interface TokenizerJson {
  version: string;
  added_tokens: {
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }[];
  normalizer: Record<string, unknown> | null;
  pre_tokenizer: Record<string, unknown> | null;
  post_processor: Record<string, unknown> | null;
  decoder: Record<string, unknown> | null;
  model: {
    type: "BPE";
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

export function sentencePieceToTokenizerJson(sp: SentencePieceModel): TokenizerJson {
  if (sp.trainer.modelType !== "bpe") {
    throw new Error(
      `tokenizer.model is a SentencePiece ${sp.trainer.modelType} model; only BPE models (InternLM2) are supported`,
    );
  }
  if (sp.trainer.treatWhitespaceAsSuffix) {
    throw new Error("tokenizer.model sets treat_whitespace_as_suffix, which this converter does not support");
  }
  const vocab: Record<string, number> = Object.create(null);
  sp.pieces.forEach((p, id) => {
    if (p.piece in vocab) throw new Error(`tokenizer.model repeats the piece ${JSON.stringify(p.piece)}`);
    vocab[p.piece] = id;
  });
  const unk = sp.pieces.find((p) => p.type === PieceType.UNKNOWN)?.piece ?? null;
  return {
    version: "1.0",
    added_tokens: addedTokens(sp),
    normalizer: normalizer(sp),
    pre_tokenizer: preTokenizer(sp),
    post_processor: null, // BOS comes from tokenizer_config.json's add_bos_token, applied by ChatTokenizer
    decoder: decoder(sp),
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      // SentencePiece fuses runs of unknown pieces into one <unk>, unless bytes replace them.
      fuse_unk: !sp.trainer.byteFallback,
      byte_fallback: sp.trainer.byteFallback,
      ignore_merges: false,
      vocab,
      merges: bpeMerges(sp),
    },
  };
}

/**
 * All `[left, right]` pairs SentencePiece could merge, in the order it prefers them.
 * A symbol is either one code point (the initial segmentation) or a piece a merge can produce.
 * USER_DEFINED pieces are matched atomically ("frozen") by SentencePiece and never merge; CONTROL, UNKNOWN
 * and BYTE pieces are not in its merge table at all. UNUSED pieces would be merged and then re-split by
 * SentencePiece ("resegment"), which HF BPE cannot express, so they are left out (none in InternLM2).
 */
export function bpeMerges(sp: SentencePieceModel): [string, string][] {
  const mergeable = new Set<string>();
  for (const p of sp.pieces) if (p.type === PieceType.NORMAL) mergeable.add(p.piece);
  const isSymbol = (s: string, codePoints: number) => codePoints === 1 || mergeable.has(s);
  const candidates: { left: string; right: string; score: number; id: number; split: number }[] = [];
  sp.pieces.forEach((p, id) => {
    if (p.type !== PieceType.NORMAL) return;
    const cps = Array.from(p.piece);
    for (let k = 1; k < cps.length; k++) {
      const left = cps.slice(0, k).join("");
      const right = cps.slice(k).join("");
      if (isSymbol(left, k) && isSymbol(right, cps.length - k)) {
        candidates.push({ left, right, score: p.score, id, split: k });
      }
    }
  });
  // DIFF: equal scores of two different pieces would be ordered by position in SentencePiece but by id here;
  // trained BPE models have distinct scores, and tests/tokenizer check the fixture against a direct
  // SentencePiece-BPE implementation.
  candidates.sort((a, b) => b.score - a.score || a.id - b.id || a.split - b.split);
  return candidates.map((c) => [c.left, c.right]);
}

function addedTokens(sp: SentencePieceModel): TokenizerJson["added_tokens"] {
  const out: TokenizerJson["added_tokens"] = [];
  sp.pieces.forEach((p, id) => {
    const atomic = p.type === PieceType.CONTROL || p.type === PieceType.UNKNOWN ||
      p.type === PieceType.USER_DEFINED;
    if (!atomic) return;
    out.push({
      id,
      content: p.piece,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: p.type !== PieceType.USER_DEFINED,
    });
  });
  return out;
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/**
 * SentencePiece's normalizer, in its order: character map, whitespace cleanup (only U+0020 counts),
 * dummy prefix, then spaces escaped to ▁.
 */
function normalizer(sp: SentencePieceModel): TokenizerJson["normalizer"] {
  const n = sp.normalizer;
  const steps: Record<string, unknown>[] = [];
  if (n.precompiledCharsmap.length > 0 && n.name !== "identity") {
    // "nfkc" is plain NFKC; anything else (nmt_nfkc, custom rules) needs the compiled map, which the JS
    // library approximates (see its Precompiled normalizer).
    steps.push(
      n.name === "nfkc"
        ? { type: "NFKC" }
        : { type: "Precompiled", precompiled_charsmap: base64(n.precompiledCharsmap) },
    );
  }
  if (n.removeExtraWhitespaces) {
    steps.push({ type: "Replace", pattern: { Regex: " {2,}" }, content: " " });
    steps.push({ type: "Replace", pattern: { Regex: "^ | $" }, content: "" });
  }
  if (n.addDummyPrefix) steps.push({ type: "Prepend", prepend: n.escapeWhitespaces ? SPACE_SYMBOL : " " });
  if (n.escapeWhitespaces) steps.push({ type: "Replace", pattern: { String: " " }, content: SPACE_SYMBOL });
  if (steps.length === 0) return null;
  return steps.length === 1 ? steps[0] : { type: "Sequence", normalizers: steps };
}

/**
 * SentencePiece BPE runs over the whole normalized string, without pre-tokenization. With split_digits the
 * trainer never builds a piece that joins a digit to anything, so splitting digits first changes no result
 * and keeps the BPE words short; if some piece does join them (hand-edited vocab), we must not split.
 */
function preTokenizer(sp: SentencePieceModel): TokenizerJson["pre_tokenizer"] {
  if (!sp.trainer.splitDigits) return null;
  const joinsDigit = sp.pieces.some((p) =>
    p.type === PieceType.NORMAL && /[0-9]/.test(p.piece) && Array.from(p.piece).length > 1
  );
  return joinsDigit ? null : { type: "Digits", individual_digits: true };
}

/** For consumers of the JSON only: ChatTokenizer decodes itself, byte-exactly like the slow tokenizer. */
function decoder(sp: SentencePieceModel): TokenizerJson["decoder"] {
  const steps: Record<string, unknown>[] = [
    { type: "Replace", pattern: { String: SPACE_SYMBOL }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
  ];
  if (sp.normalizer.addDummyPrefix) steps.push({ type: "Strip", content: " ", start: 1, stop: 0 });
  return { type: "Sequence", decoders: steps };
}
