import assert from "node:assert/strict";
import { loadTokenizer } from "../../src/tokenizer/load_tokenizer.ts";
import type { ChatTokenizer } from "../../src/tokenizer/chat_tokenizer.ts";
import { parseSentencePieceModel, PieceType } from "../../src/tokenizer/sentencepiece_model.ts";
import type { SentencePieceModel } from "../../src/tokenizer/sentencepiece_model.ts";
import { sentencePieceToTokenizerJson } from "../../src/tokenizer/sentencepiece_to_tokenizer_json.ts";
import { manifest, MODEL_DIR, rng } from "./fixture.ts";

const modelBytes = await Deno.readFile(`${MODEL_DIR}/tokenizer.model`);
const sp = parseSentencePieceModel(modelBytes);

Deno.test("tokenizer.model parses with the flags and piece types the fixture documents", () => {
  assert.equal(sp.pieces.length, manifest.model.vocab_size - 9);
  assert.equal(sp.trainer.modelType, "bpe");
  assert.equal(sp.trainer.byteFallback, manifest.tokenizer.sp_byte_fallback);
  assert.equal(sp.trainer.splitDigits, manifest.tokenizer.sp_split_digits);
  assert.equal(sp.normalizer.addDummyPrefix, manifest.tokenizer.sp_add_dummy_prefix);
  assert.equal(sp.normalizer.removeExtraWhitespaces, false);
  assert.deepEqual(sp.pieces.slice(0, 3).map((p) => [p.piece, p.type]), [
    ["<unk>", PieceType.UNKNOWN],
    ["<s>", PieceType.CONTROL],
    ["</s>", PieceType.CONTROL],
  ]);
  assert.equal(sp.pieces.filter((p) => p.type === PieceType.BYTE).length, 256);
  const ids = manifest.tokenizer.special_ids;
  for (
    const t of [
      "<|plugin|>",
      "<|interpreter|>",
      "<|action_end|>",
      "<|action_start|>",
      "<|im_end|>",
      "<|im_start|>",
    ]
  ) {
    assert.deepEqual([sp.pieces[ids[t]].piece, sp.pieces[ids[t]].type], [t, PieceType.USER_DEFINED]);
  }
});

/** Minimal protobuf writer for hand-made models: varint tags and length-delimited fields only. */
function field(num: number, payload: Uint8Array | string | number): number[] {
  if (typeof payload === "number") return [(num << 3) | 0, payload];
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return [(num << 3) | 2, bytes.length, ...bytes];
}

Deno.test("absent proto2 fields take sentencepiece_model.proto defaults", () => {
  const bytes = new Uint8Array(field(1, new Uint8Array(field(1, "a"))));
  const m = parseSentencePieceModel(bytes);
  assert.deepEqual(m.pieces, [{ piece: "a", score: 0, type: PieceType.NORMAL }]);
  assert.equal(m.trainer.modelType, "unigram");
  assert.equal(m.normalizer.addDummyPrefix, true);
  assert.equal(m.normalizer.removeExtraWhitespaces, true);
  assert.equal(m.normalizer.escapeWhitespaces, true);
  assert.throws(() => sentencePieceToTokenizerJson(m), /only BPE/);
});

Deno.test("bytes that are not a ModelProto are rejected", () => {
  assert.throws(() => parseSentencePieceModel(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])));
  assert.throws(() => parseSentencePieceModel(new Uint8Array(0)), /no pieces/);
});

/**
 * SentencePiece BPE written from its description (bpe_model.cc), independent of the merge-list
 * conversion: normalize, one symbol per code point, repeatedly merge the adjacent pair whose concatenation
 * is a NORMAL piece with the highest score (leftmost on ties), then byte-fallback whatever is not a piece.
 */
function sentencePieceEncode(model: SentencePieceModel, text: string): number[] {
  const normal = new Map<string, { id: number; score: number }>();
  model.pieces.forEach((p, id) => p.type === PieceType.NORMAL && normal.set(p.piece, { id, score: p.score }));
  const n = model.normalizer;
  if (n.removeExtraWhitespaces) text = text.replace(/ {2,}/g, " ").replace(/^ | $/g, "");
  if (text.length === 0) return [];
  if (n.addDummyPrefix) text = " " + text;
  const symbols = Array.from(text.replaceAll(" ", "\u2581"));
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const hit = normal.get(symbols[i] + symbols[i + 1]);
      if (hit && hit.score > bestScore) [best, bestScore] = [i, hit.score];
    }
    if (best < 0) break;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
  const byteId = (b: number) =>
    model.pieces.findIndex((p) => p.piece === `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  return symbols.flatMap((s) =>
    normal.has(s) ? [normal.get(s)!.id] : [...new TextEncoder().encode(s)].map(byteId)
  );
}

/** Random mixes of whole vocab pieces (so long merges and their order matter) and single characters. */
function randomTexts(seed: number, count: number): string[] {
  const rand = rng(seed);
  const normal = sp.pieces.filter((p) => p.type === PieceType.NORMAL).map((p) =>
    p.piece.replaceAll("\u2581", " ")
  );
  const chars = [...new Set(normal.flatMap((p) => [...p]))]
    .concat([" ", " ", "\n", "\t", "é", "🙂", "龘", "7", "'", "|", ">"]);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  return Array.from(
    { length: count },
    () =>
      Array.from({ length: Math.floor(rand() * 12) }, () => (rand() < 0.6 ? pick(normal) : pick(chars))).join(
        "",
      ),
  );
}

function checkAgainstSentencePiece(tok: ChatTokenizer, model: SentencePieceModel, seed: number) {
  for (const text of randomTexts(seed, 400)) {
    assert.deepEqual(
      tok.encode(text, { addBos: false }),
      sentencePieceEncode(model, text),
      JSON.stringify(text),
    );
  }
}

Deno.test("converted BPE encodes random text exactly like SentencePiece BPE", async () => {
  checkAgainstSentencePiece(await loadTokenizer(MODEL_DIR), sp, 1);
});

Deno.test("split_digits pre-tokenization is emitted only because no piece joins a digit to anything", () => {
  const json = sentencePieceToTokenizerJson(sp);
  assert.deepEqual(json.pre_tokenizer, { type: "Digits", individual_digits: true });
  const joined: SentencePieceModel = { ...sp, pieces: [...sp.pieces, { piece: "4a", score: -1e4, type: 1 }] };
  assert.equal(sentencePieceToTokenizerJson(joined).pre_tokenizer, null);
});

/** The fixture model with a NormalizerSpec appended (a later occurrence of the field replaces it). */
async function variantDir(addDummyPrefix: boolean, removeExtraWhitespaces: boolean): Promise<string> {
  const dir = await Deno.makeTempDir();
  const spec = [...field(3, addDummyPrefix ? 1 : 0), ...field(4, removeExtraWhitespaces ? 1 : 0)];
  await Deno.writeFile(
    `${dir}/tokenizer.model`,
    new Uint8Array([...modelBytes, ...field(3, new Uint8Array(spec))]),
  );
  for (const f of ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]) {
    await Deno.copyFile(`${MODEL_DIR}/${f}`, `${dir}/${f}`);
  }
  return dir;
}

Deno.test("add_dummy_prefix and remove_extra_whitespaces are honoured when a model sets them", async (t) => {
  const dir = await variantDir(true, true);
  try {
    const variant = parseSentencePieceModel(await Deno.readFile(`${dir}/tokenizer.model`));
    assert.equal(variant.normalizer.addDummyPrefix, true);
    assert.equal(variant.normalizer.removeExtraWhitespaces, true);
    const tok = await loadTokenizer(dir);
    await t.step(
      "encoding matches SentencePiece BPE on random text",
      () => checkAgainstSentencePiece(tok, variant, 2),
    );
    await t.step("each chunk between added tokens gets its own dummy prefix", () => {
      const ids = tok.encode("the<|im_end|>the");
      const pieces = ids.map((id) => tok.idToToken(id));
      assert.deepEqual(pieces, ["<s>", "▁the", "<|im_end|>", "▁the"]);
      assert.deepEqual(tok.encode("   ", { addBos: false }), [], "whitespace-only input encodes to nothing");
    });
    await t.step("decode drops the dummy-prefix space of each run, as SentencePiece does", () => {
      const ids = tok.encode("the<|im_end|>the");
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "the <|im_end|> the");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
