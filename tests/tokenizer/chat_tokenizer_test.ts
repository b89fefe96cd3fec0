import assert from "node:assert/strict";
import { loadTokenizer } from "../../src/tokenizer/load_tokenizer.ts";
import { parseSentencePieceModel } from "../../src/tokenizer/sentencepiece_model.ts";
import { sentencePieceToTokenizerJson } from "../../src/tokenizer/sentencepiece_to_tokenizer_json.ts";
import type { ChatTokenizer } from "../../src/tokenizer/chat_tokenizer.ts";
import { batchCase, chatCases, manifest, MODEL_DIR } from "./fixture.ts";

const tok = await loadTokenizer(MODEL_DIR);

async function checkProbes(t: Deno.TestContext, tk: ChatTokenizer) {
  for (const p of manifest.tokenizer.probes) {
    await t.step(`probe ${JSON.stringify(p.text)}`, () => {
      const ids = tk.encode(p.text, { allowImageTokens: true });
      assert.deepEqual(ids, p.input_ids);
      assert.deepEqual(ids.map((id) => tk.idToToken(id)), p.pieces);
      assert.equal(tk.decode(p.input_ids, { skipSpecialTokens: true }), p.decode_skip_special);
      assert.equal(tk.decode(p.input_ids, { skipSpecialTokens: false }), p.decode_keep_special);
    });
  }
}

Deno.test("tokenizer reproduces every manifest probe: ids, pieces and both decodes", async (t) => {
  await checkProbes(t, tok);
});

Deno.test("tokenizer loads the fixture in well under a second", async () => {
  const t0 = performance.now();
  await loadTokenizer(MODEL_DIR);
  const ms = performance.now() - t0;
  assert.ok(ms < 500, `load took ${ms.toFixed(0)} ms`);
});

Deno.test("special ids and vocab size match the fixture", () => {
  const s = manifest.tokenizer.special_ids;
  assert.deepEqual(tok.specialIds, {
    bos: s["<s>"],
    eos: s["</s>"],
    pad: s["</s>"],
    unk: s["<unk>"],
    imStart: s["<|im_start|>"],
    imEnd: s["<|im_end|>"],
    img: s["<img>"],
    imgEnd: s["</img>"],
    imgContext: s["<IMG_CONTEXT>"],
  });
  for (const [token, id] of Object.entries(s)) {
    assert.equal(tok.tokenToId(token), id);
    assert.equal(tok.idToToken(id), token);
  }
  assert.equal(tok.vocabSize, manifest.model.vocab_size);
});

Deno.test("responseFromIds reproduces chat()/batch_chat() responses and the skip-special decode of every trace", () => {
  for (const c of chatCases) {
    assert.equal(tok.responseFromIds(c.response_ids), c.response, c.id);
    assert.equal(
      tok.decode(c.generated_ids, { skipSpecialTokens: true }),
      c.generated_text_skip_special,
      c.id,
    );
  }
  for (const s of batchCase.samples) assert.equal(tok.responseFromIds(s.generated_ids), s.response);
});

Deno.test("responseFromIds strips Python whitespace, including U+001D that JS trim() keeps", () => {
  const ctrl = tok.tokenToId("<0x1D>");
  const a = tok.tokenToId("a");
  assert.equal(tok.decode([ctrl, a], { skipSpecialTokens: true }), "\u001da");
  assert.equal(tok.responseFromIds([ctrl, a]), "a");
});

Deno.test("decode turns each invalid byte of a byte-fallback run into its own U+FFFD", () => {
  const b = (x: string) => tok.tokenToId(`<0x${x}>`);
  const a = tok.tokenToId("a");
  // E4 B8 is a truncated 3-byte sequence: SentencePiece replaces byte by byte (TextDecoder would give one).
  assert.equal(tok.decode([b("E4"), b("B8"), a]), "\uFFFD\uFFFDa");
  assert.equal(tok.decode([b("E4"), b("B8"), b("96"), a]), "世a");
  // Overlong encoding of "/" is invalid too.
  assert.equal(tok.decode([b("C0"), b("AF")]), "\uFFFD\uFFFD");
});

Deno.test("encode keeps typed image tokens as text unless allowImageTokens is set", () => {
  const { img, imgEnd, imgContext, imStart } = tok.specialIds;
  const text = "see <img><IMG_CONTEXT></img> and <|im_start|>";
  const plain = tok.encode(text);
  for (const id of [img, imgEnd, imgContext]) assert.ok(!plain.includes(id));
  assert.ok(plain.includes(imStart), "other added tokens are still split out");
  // The added token becomes its own sub-text, joined with one more space (spaces_between_special_tokens).
  assert.equal(
    tok.decode(plain, { skipSpecialTokens: true }),
    "see <img><IMG_CONTEXT></img> and  <|im_start|>",
  );
  const split = tok.encode(text, { allowImageTokens: true });
  assert.deepEqual(split.filter((id) => [img, imgEnd, imgContext].includes(id)), [img, imgContext, imgEnd]);
});

Deno.test("tokenToId and idToToken reject what is not in the vocabulary", () => {
  assert.throws(() => tok.tokenToId("no-such-piece"), /not in the vocabulary/);
  assert.throws(() => tok.idToToken(tok.vocabSize), /outside the vocabulary/);
  assert.throws(() => tok.idToToken(-1), /outside the vocabulary/);
});

Deno.test("a directory with tokenizer.json is loaded from it and behaves the same", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const json = sentencePieceToTokenizerJson(
      parseSentencePieceModel(await Deno.readFile(`${MODEL_DIR}/tokenizer.model`)),
    );
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(json));
    for (const f of ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]) {
      await Deno.copyFile(`${MODEL_DIR}/${f}`, `${dir}/${f}`);
    }
    const fromJson = await loadTokenizer(dir);
    await checkProbes(t, fromJson);
    // Proof that tokenizer.json, not a tokenizer.model, was read: there is none in `dir`.
    await assert.rejects(Deno.stat(`${dir}/tokenizer.model`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a directory without tokenizer files fails with a clear message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadTokenizer(dir), /neither tokenizer\.json nor tokenizer\.model/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
