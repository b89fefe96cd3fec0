import assert from "node:assert/strict";
import { loadTokenizer } from "../../src/tokenizer/load_tokenizer.ts";
import {
  buildBatchPromptIds,
  buildChatPromptIds,
  INTERNLM2_CHAT_SYSTEM_MESSAGE,
} from "../../src/tokenizer/chat_template.ts";
import { batchCase, chatCases, expandRle, manifest, MODEL_DIR, readI32, typedQuestion } from "./fixture.ts";

const tok = await loadTokenizer(MODEL_DIR);
const N = manifest.model.num_image_token;

/** The reference way: paste the image block into the query text, then tokenize it whole. */
function referenceQueryIds(query: string): number[] {
  return tok.encode(query, { allowImageTokens: true });
}
const ctx = (n: number) => "<IMG_CONTEXT>".repeat(n);
const block = (tiles: number) => `<img>${ctx(N * tiles)}</img>`;
const sys = `<|im_start|>system\n${INTERNLM2_CHAT_SYSTEM_MESSAGE}<|im_end|>`;

Deno.test("the fixture's system message is the V1.5 one", () => {
  assert.equal(manifest.model.system_message, INTERNLM2_CHAT_SYSTEM_MESSAGE);
});

Deno.test("chat prompt ids equal every golden input_ids file", async (t) => {
  for (const c of chatCases) {
    await t.step(c.id, () => {
      const golden = readI32(c.input_ids.file);
      assert.deepEqual(expandRle(c.input_ids_rle), golden, "manifest RLE and binary agree");
      const history = (c.history ?? []).map(([q, a]) => [typedQuestion(q), a] as const);
      const ids = buildChatPromptIds(tok, {
        question: c.question,
        history,
        imageTileCounts: c.num_tiles > 0 ? [c.num_tiles] : [],
        numImageToken: N,
      });
      assert.deepEqual(ids, golden);
    });
  }
});

Deno.test("two images' tiles go into one concatenated block", () => {
  const c = chatCases.find((c) => c.id === "two_images_concat")!;
  // img1 has 1 tile, img2 has 4 (manifest images); one block of 5·256 either way.
  const ids = buildChatPromptIds(tok, { question: c.question, imageTileCounts: [1, 4] });
  assert.deepEqual(ids, readI32(c.input_ids.file));
  const starts = ids.filter((id) => id === tok.specialIds.img).length;
  assert.equal(starts, 1);
});

Deno.test("batch prompt ids and attention mask equal the golden left-padded batch", () => {
  const [B, L] = batchCase.input_ids.shape;
  const goldIds = readI32(batchCase.input_ids.file);
  const goldMask = readI32(batchCase.attention_mask.file);
  const { inputIds, attentionMask } = buildBatchPromptIds(
    tok,
    batchCase.questions.map((question, i) => ({ question, tileCount: batchCase.image_counts[i] })),
  );
  assert.equal(inputIds.length, B);
  for (let b = 0; b < B; b++) {
    assert.deepEqual(inputIds[b], goldIds.slice(b * L, (b + 1) * L), `row ${b} ids`);
    assert.deepEqual(attentionMask[b], goldMask.slice(b * L, (b + 1) * L), `row ${b} mask`);
  }
  assert.equal(batchCase.pad_token_id, tok.specialIds.pad);
});

Deno.test("image tokens typed in a question or history never become image-token ids", () => {
  const { img, imgEnd, imgContext } = tok.specialIds;
  const typed = "What is <IMG_CONTEXT> and <img>x</img> and <image>?";
  const ids = buildChatPromptIds(tok, {
    question: typed,
    history: [[`<img>${ctx(3)}</img>`, "<IMG_CONTEXT><img>"]],
  });
  for (const id of [img, imgEnd, imgContext]) assert.ok(!ids.includes(id), `id ${id} must not appear`);
  // With one real image, exactly its 256 slots exist, however many the user typed.
  const withImage = buildChatPromptIds(tok, { question: typed + ctx(5), imageTileCounts: [1] });
  assert.equal(withImage.filter((id) => id === imgContext).length, N);
  assert.equal(withImage.filter((id) => id === img).length, 1);
  assert.equal(withImage.filter((id) => id === imgEnd).length, 1);
  // The typed text survives as text.
  assert.ok(tok.decode(withImage, { skipSpecialTokens: true }).includes(typed + ctx(5)));
});

Deno.test("structural ids equal tokenizing the reference query text when the user typed no image tokens", () => {
  const history: [string, string][] = [
    ["Describe it.", "An answer with <|im_start|> inside and 2024 digits."],
    ["And then?", ""],
    ["多轮", "好的 。"],
  ];
  // Reference MPT rendering: empty answers emit only the role; the block sits in the first user turn.
  let query = `${sys}<|im_start|>user\n${block(2)}\n${history[0][0]}<|im_end|>`;
  query += `<|im_start|>assistant\n${history[0][1]}<|im_end|>`;
  query += `<|im_start|>user\n${history[1][0]}<|im_end|><|im_start|>assistant\n`;
  query += `<|im_start|>user\n${history[2][0]}<|im_end|><|im_start|>assistant\n${history[2][1]}<|im_end|>`;
  query += `<|im_start|>user\nNext question<|im_end|><|im_start|>assistant\n`;
  const ids = buildChatPromptIds(tok, { question: "Next question", history, imageTileCounts: [2] });
  assert.deepEqual(ids, referenceQueryIds(query));
  // The answer's "<|im_start|>" text is re-tokenized into the special token, as the reference does.
  // 9 role markers (system, 4 user, 4 assistant) + 1 from the first answer.
  assert.equal(ids.filter((id) => id === tok.specialIds.imStart).length, 10);
});

Deno.test("multi_image_chat layout numbers each image and gives it its own block", () => {
  const q = "Compare them.";
  const query = `${sys}<|im_start|>user\n<image 1> (图1):${block(1)}<image 2> (图2):${block(3)}\n${q}` +
    `<|im_end|><|im_start|>assistant\n`;
  const ids = buildChatPromptIds(tok, { question: q, imageTileCounts: [1, 3], imageLayout: "numbered" });
  assert.deepEqual(ids, referenceQueryIds(query));
  assert.equal(ids.filter((id) => id === tok.specialIds.img).length, 2);
});

Deno.test("text-only prompts have no image block, and an empty question emits only the user role", () => {
  const ids = buildChatPromptIds(tok, { question: "Hi", imageTileCounts: [] });
  assert.deepEqual(ids, referenceQueryIds(`${sys}<|im_start|>user\nHi<|im_end|><|im_start|>assistant\n`));
  const empty = buildChatPromptIds(tok, { question: "" });
  assert.deepEqual(empty, referenceQueryIds(`${sys}<|im_start|>user\n<|im_start|>assistant\n`));
});

Deno.test("numImageToken and tile counts are validated and honoured", () => {
  const ids = buildChatPromptIds(tok, { question: "q", imageTileCounts: [2], numImageToken: 3 });
  assert.equal(ids.filter((id) => id === tok.specialIds.imgContext).length, 6);
  assert.throws(
    () => buildChatPromptIds(tok, { question: "q", imageTileCounts: [-1] }),
    /imageTileCounts\[0\]/,
  );
  assert.throws(() => buildChatPromptIds(tok, { question: "q", numImageToken: 0 }), /numImageToken/);
});

Deno.test("a batch item without an image gets the same ids as a text-only chat, left-padded", () => {
  const { inputIds, attentionMask } = buildBatchPromptIds(tok, [
    { question: "Hi", tileCount: 0 },
    { question: "Look", tileCount: 1 },
  ]);
  const single = buildChatPromptIds(tok, { question: "Hi" });
  const pad = inputIds[0].length - single.length;
  assert.ok(pad > 0);
  assert.deepEqual(inputIds[0].slice(pad), single);
  assert.deepEqual(inputIds[0].slice(0, pad), new Array(pad).fill(tok.specialIds.pad));
  assert.deepEqual(attentionMask[0], [...new Array(pad).fill(0), ...new Array(single.length).fill(1)]);
  assert.ok(attentionMask[1].every((m) => m === 1));
});
