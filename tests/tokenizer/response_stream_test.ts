import assert from "node:assert/strict";
import { loadTokenizer } from "../../src/tokenizer/load_tokenizer.ts";
import { ResponseStream } from "../../src/tokenizer/response_stream.ts";
import { batchCase, chatCases, MODEL_DIR, rng } from "./fixture.ts";

const tok = await loadTokenizer(MODEL_DIR);

/**
 * Streams `ids` and checks the contract at every step: the text emitted so far is a prefix of the response
 * of the ids pushed so far extended by the rest of `ids` (nothing emitted is ever wrong), and after
 * finish() the deltas concatenate to responseFromIds(ids).
 */
function streamAndCheck(ids: readonly number[]): string[] {
  const s = new ResponseStream(tok);
  const deltas: string[] = [];
  const finalText = tok.responseFromIds(ids);
  for (let i = 0; i < ids.length; i++) {
    deltas.push(s.push(ids[i]));
    const soFar = deltas.join("");
    assert.ok(
      finalText.startsWith(soFar),
      `step ${i}: emitted ${JSON.stringify(soFar)} vs ${JSON.stringify(finalText)}`,
    );
    assert.ok(
      tok.responseFromIds(ids.slice(0, i + 1)).startsWith(soFar),
      `step ${i}: ahead of the ids pushed`,
    );
    assert.equal(s.text, soFar);
  }
  deltas.push(s.finish());
  assert.equal(deltas.join(""), finalText);
  assert.ok(s.done);
  return deltas;
}

Deno.test("ResponseStream deltas concatenate to every case's response (response_ids and generated_ids)", async (t) => {
  for (const c of chatCases) {
    await t.step(c.id, () => {
      streamAndCheck(c.response_ids);
      streamAndCheck(c.generated_ids);
      assert.equal(streamAndCheck(c.generated_ids).join(""), c.response);
    });
  }
  await t.step("batch samples", () => {
    for (const s of batchCase.samples) assert.equal(streamAndCheck(s.generated_ids).join(""), s.response);
  });
});

Deno.test("ResponseStream is final at <|im_end|> and ignores later ids", () => {
  const s = new ResponseStream(tok);
  const a = tok.encode("ok", { addBos: false });
  let out = "";
  for (const id of a) out += s.push(id);
  assert.equal(s.done, false);
  out += s.push(tok.specialIds.imEnd);
  assert.equal(s.done, true);
  assert.equal(out, "ok");
  assert.equal(s.push(tok.tokenToId("a")), "");
  assert.equal(s.finish(), "");
});

Deno.test("ResponseStream holds back an unfinished UTF-8 character until its last byte arrives", () => {
  const s = new ResponseStream(tok);
  const ids = tok.encode("a世", { addBos: false }); // 世 is byte fallback in the fixture vocab
  assert.ok(ids.length >= 4);
  const deltas = ids.map((id) => s.push(id));
  assert.deepEqual(deltas.slice(-3, -1), ["", ""], "no U+FFFD leaks while the character is incomplete");
  assert.equal(deltas.join(""), "a世");
});

Deno.test("ResponseStream withholds whitespace and cleanup-sensitive tails that later ids can change", () => {
  // "x" " n" then "'t": clean_up_tokenization turns " n't" into "n't", deleting the space already seen.
  const ids = tok.encode("do n't stop .", { addBos: false });
  const deltas = streamAndCheck(ids);
  assert.equal(deltas.join(""), tok.responseFromIds(ids));
  assert.equal(deltas.join(""), "don't stop.");
});

Deno.test("ResponseStream keeps its contract on random id sequences", () => {
  const rand = rng(20240604);
  // Units biased towards what makes decoding contextual: bytes of split characters, spaces, the
  // clean_up_tokenization patterns and pieces of them, added tokens (kept and skipped), "<|im_end|>" text.
  const bytes = [
    "E4",
    "B8",
    "96",
    "F0",
    "9F",
    "99",
    "82",
    "C3",
    "A9",
    "80",
    "BF",
    "1D",
    "20",
    "0A",
    "27",
    "3C",
  ];
  const texts = [
    " n't",
    " 's",
    " 'm",
    " 've",
    " 're",
    " ' ",
    " .",
    " ,",
    " ?",
    " !",
    " n",
    " '",
    "<|im",
    "_end|>",
  ];
  const units: number[][] = [
    ...bytes.map((b) => [tok.tokenToId(`<0x${b}>`)]),
    ...texts.map((t) => tok.encode(t, { addBos: false })),
    ...["\u2581", "\n", "n", "t", "s", "a", "e"].map((p) => [tok.tokenToId(p)]),
    ...tok.encode("<|im_start|><|im_end|><|action_start|></s><img><IMG_CONTEXT>", {
      addBos: false,
      allowImageTokens: true,
    }).map((id) => [id]),
    [tok.specialIds.bos],
  ];
  for (let n = 0; n < 600; n++) {
    const ids: number[] = [];
    const len = 1 + Math.floor(rand() * 12);
    for (let k = 0; k < len; k++) {
      if (rand() < 0.8) ids.push(...units[Math.floor(rand() * units.length)]);
      else ids.push(Math.floor(rand() * tok.vocabSize));
    }
    streamAndCheck(ids);
  }
});
