import assert from "node:assert/strict";
import { WebGpuEngine } from "../../src/engine/webgpu_engine.ts";
import { defaultStepsBesideWork } from "../../src/engine/generate.ts";
import { Gpu } from "../../src/gpu/device.ts";
import { preprocessImage } from "../../src/image/pixel_values.ts";
import { InternVLModel } from "../../src/model/internvl.ts";
import { InputError } from "../../src/errors.ts";
import {
  type ChatResult,
  defaultGenerationConfig,
  type GenerationConfig,
  type HistoryTurn,
  type ImageLayout,
} from "../../src/engine/types.ts";
import { buildChatPromptIds } from "../../src/tokenizer/chat_template.ts";
import { caseById, goldenI32, imageFile, type Json, manifest, modelDir } from "../model/tiny_fixture.ts";

const greedy32 = { ...defaultGenerationConfig, maxNewTokens: 32 };

// Each WebGpuEngine.load makes a device of its own, and each device builds its pipelines anew: on llvmpipe
// an engine's warm-up spends ~13 s compiling its ~46 pipelines, so this file's three engines spent ~40 s
// compiling the same shaders three times. They share one device here (its pipeline cache); the weights,
// KV caches, vision scratch and counters each engine keeps are still its own.
const createGpu = Gpu.create;
let sharedGpu: Promise<Gpu> | null = null;
Gpu.create = (options) =>
  sharedGpu ??= createGpu(options).then((gpu) => {
    // Tearing down a live device at process exit sometimes crashes Mesa's llvmpipe; destroy it first.
    globalThis.addEventListener("unload", () => gpu.destroy());
    return gpu;
  });

let enginePromise: Promise<WebGpuEngine> | null = null;
function engine(): Promise<WebGpuEngine> {
  enginePromise ??= WebGpuEngine.load({ modelDir, randomWeights: true });
  return enginePromise;
}

let batchEnginePromise: Promise<WebGpuEngine> | null = null;
/**
 * One MAX_BATCH 4 engine for the batching tests (a load with its warm-up takes ~11 s on llvmpipe): each test
 * starts from an empty kept cache and reads the engine's counters as differences from its start.
 */
async function batchEngine(): Promise<{ e: WebGpuEngine; batched: () => number; joins: () => number }> {
  batchEnginePromise ??= WebGpuEngine.load({ modelDir, randomWeights: true, maxBatch: 4 });
  const e = await batchEnginePromise;
  e.kept.clear();
  e.keptImages.clear();
  const b0 = e.batchedRounds, j0 = e.joins;
  return { e, batched: () => e.batchedRounds - b0, joins: () => e.joins - j0 };
}

/** The reference stores the first question with its image block; users type it without. */
function typedHistory(c: Json): HistoryTurn[] {
  return (c.history ?? []).map(([q, a]: [string, string]) => [q.replace(/^<img>.*?<\/img>\n/s, ""), a]);
}

for (const id of ["single_image", "history_round2", "two_images_concat", "text_only"]) {
  Deno.test(`chat() reproduces the reference ${id} round: prompt ids, response ids and text`, async () => {
    const e = await engine();
    const c = caseById(id);
    let streamed = "";
    const result = await e.chat({
      question: c.question,
      images: c.images.map(imageFile),
      history: typedHistory(c),
      maxNum: 6,
      generation: greedy32,
      onText: (d) => streamed += d,
    });
    assert.deepEqual(result.promptTokenIds, Array.from(goldenI32(c.input_ids.file)));
    assert.deepEqual(result.outputTokenIds, c.response_ids);
    assert.equal(result.response, c.response);
    assert.equal(streamed, c.response);
    assert.deepEqual(
      result.images.map((i) => i.tiles),
      c.images.map((k: string) => manifest.images[k].num_tiles),
    );
    assert.deepEqual(result.history.at(-1), [c.question, c.response]);
  });
}

Deno.test("batchChat() returns the reference batch_chat responses, equal to single chats", async () => {
  const e = await engine();
  const c = caseById("batch_chat");
  const items = c.questions.map((q: string, i: number) => ({
    question: q,
    images: [imageFile(c.images[i])],
  }));
  e.keptImages.clear();
  const results = await e.batchChat(items, 6, greedy32);
  assert.deepEqual(results.map((r) => r.response), c.samples.map((s: Json) => s.response));
  // Items encoded in one pass keep nothing (GPU_IMAGE_CACHE_BYTES); each chat alone keeps its picture's.
  assert.equal(e.keptImages.size, 0);
  for (let i = 0; i < items.length; i++) {
    const alone = await e.chat({ ...items[i], history: [], maxNum: 6, generation: greedy32 });
    assert.equal(alone.response, results[i].response);
  }
  // The same batch again takes every item's kept embeddings, with the same answers and tilings.
  const hits = e.keptImages.hits;
  const again = await e.batchChat(items, 6, greedy32);
  assert.equal(e.keptImages.hits, hits + items.length);
  assert.deepEqual(again.map((r) => r.response), results.map((r) => r.response));
  assert.deepEqual(again.map((r) => r.images), results.map((r) => r.images));
  e.kept.clear();
  e.keptImages.clear();
});

Deno.test("seeded sampling: the same seed gives the same text, other seeds other text", async () => {
  const e = await engine();
  const sampled = { ...greedy32, doSample: true, temperature: 1.5, topP: 0.95, topK: 0, maxNewTokens: 24 };
  const run = async (seed: number) =>
    (await e.chat({
      question: "Tell me a story.",
      images: [],
      history: [],
      maxNum: 6,
      generation: { ...sampled, seed },
    }))
      .outputTokenIds;
  const a = await run(7), b = await run(7);
  assert.deepEqual(a, b);
  const others = [await run(8), await run(9), await run(10)];
  assert.ok(
    others.some((o) => JSON.stringify(o) !== JSON.stringify(a)),
    "three other seeds all gave the same ids",
  );
});

Deno.test("beam search with one beam equals greedy, and with three beams ends on eos or the token limit", async () => {
  const e = await engine();
  const c = caseById("text_only");
  const base = { question: c.question, images: [], history: [], maxNum: 6 };
  const greedy = await e.chat({ ...base, generation: greedy32 });
  const one = await e.chat({ ...base, generation: { ...greedy32, numBeams: 1 } });
  assert.deepEqual(one.outputTokenIds, greedy.outputTokenIds);
  const beams = await e.chat({ ...base, generation: { ...greedy32, numBeams: 3, maxNewTokens: 12 } });
  const out = beams.outputTokenIds;
  const imEnd = manifest.tokenizer.special_ids["<|im_end|>"];
  assert.ok(out.length >= 1 && out.length <= 12, `beam output ${out}`);
  assert.ok(out.length === 12 || out.at(-1) === imEnd, `beam output ${out}`);
  // eos can only close the answer, never sit inside it
  assert.ok(out.indexOf(imEnd) === -1 || out.indexOf(imEnd) === out.length - 1, `beam output ${out}`);
});

Deno.test("a follow-up round continues the kept KV cache and answers like a cold engine", async () => {
  const e = await engine();
  const first = caseById("single_image"), second = caseById("history_round2");
  const ask = (eng: WebGpuEngine, c: Json) =>
    eng.chat({
      question: c.question,
      images: c.images.map((k: string) => imageFile(k)),
      history: typedHistory(c),
      maxNum: 6,
      generation: greedy32,
    });
  await ask(e, first);
  const hits = e.kept.hits;
  const warm = await ask(e, second);
  assert.equal(e.kept.hits, hits + 1, "the second round did not reuse the first round's cache");
  assert.deepEqual(warm.promptTokenIds, Array.from(goldenI32(second.input_ids.file)));
  assert.deepEqual(warm.outputTokenIds, second.response_ids);

  // A cold engine keeps no KV cache, no image embeddings and no vision scratch (VISION_SCRATCH_BYTES=0),
  // resizes images on the CPU (IMAGE_RESIZE=cpu) and has not warmed up: the answer depends on none of them.
  const cold = await WebGpuEngine.load({
    modelDir,
    randomWeights: true,
    keptKvBytes: 0,
    keptImageBytes: 0,
    visionScratchBytes: 0,
    imageResize: "cpu",
    warmUp: false,
  });
  try {
    assert.equal(e.model.visionScratch.budgetBytes, 4 * 2 ** 30);
    assert.ok(e.model.visionScratch.heldTiles > 0, "the warm engine kept no vision scratch");
    assert.equal(cold.model.visionScratch.budgetBytes, 0);
    const r = await ask(cold, second);
    assert.equal(cold.kept.hits, 0);
    assert.equal(cold.keptImages.size, 0);
    assert.equal(cold.model.visionScratch.heldTiles, 0);
    assert.deepEqual(r.outputTokenIds, warm.outputTokenIds);
    assert.equal(r.response, second.response);
  } finally {
    // Its device is the shared one: free only what the cold engine holds.
    cold.model.releaseScratch();
  }
});

Deno.test("a kept KV cache is never reused for another picture with the same prompt ids", async () => {
  const e = await engine();
  // max_num 1: both images become one tile, so both prompts have identical token ids.
  const ask = (key: string) =>
    e.chat({
      question: "Same words, other picture?",
      images: [imageFile(key)],
      history: [],
      maxNum: 1,
      generation: greedy32,
    });
  const first = await ask("img2");
  const [hits, misses] = [e.kept.hits, e.kept.misses];
  const other = await ask("img4");
  assert.deepEqual(other.promptTokenIds, first.promptTokenIds);
  assert.deepEqual(
    [e.kept.hits, e.kept.misses],
    [hits, misses + 1],
    "the second picture reused the first one's cache",
  );
  const again = await ask("img2");
  assert.equal(e.kept.hits, hits + 1, "asking about the first picture again reuses its cache");
  assert.deepEqual(again.outputTokenIds, first.outputTokenIds);
});

Deno.test("a new conversation about a picture encoded before takes its kept embeddings and answers as the reference", async () => {
  const e = await engine();
  e.kept.clear();
  e.keptImages.clear();
  const c = caseById("single_image");
  const ask = (maxNum: number, generation = greedy32) =>
    e.chat({ question: c.question, images: c.images.map(imageFile), history: [], maxNum, generation });
  const counts = () => [e.keptImages.hits, e.keptImages.misses];
  const [h, m] = counts();
  const first = await ask(6);
  // No KV cache to continue: the next round is a new conversation's whole prompt pass.
  e.kept.clear();
  const second = await ask(6);
  assert.deepEqual(counts(), [h + 1, m + 1], "encoded once, then taken");
  assert.deepEqual(first.outputTokenIds, c.response_ids);
  assert.deepEqual(second.outputTokenIds, c.response_ids, "with kept embeddings");
  assert.deepEqual(second.images, first.images);
  // The same picture in other tiles (max_num) has other embeddings.
  e.kept.clear();
  await ask(1, { ...greedy32, maxNewTokens: 1 });
  assert.deepEqual(counts(), [h + 1, m + 2]);
  assert.equal(e.keptImages.size, 2);
  e.kept.clear();
  e.keptImages.clear();
});

Deno.test("a new conversation about a kept conversation's picture starts from a copy of its image block", async () => {
  const e = await engine();
  e.kept.clear();
  e.keptImages.clear();
  const first = caseById("single_image"), second = caseById("history_round2");
  const ask = (question: string, history: HistoryTurn[] = []) =>
    e.chat({ question, images: first.images.map(imageFile), history, maxNum: 6, generation: greedy32 });
  const a = await ask(first.question);
  assert.deepEqual(a.outputTokenIds, first.response_ids);
  const counts = () => [e.kept.borrowed, e.keptImages.hits, e.keptImages.misses];
  const [c0, h0, m0] = counts();
  // Another first question about the same picture: the system prompt and the image block come from A's cache,
  // so it needs no image embeddings.
  const b = await ask(second.question);
  assert.deepEqual(counts(), [c0 + 1, h0, m0]);
  // A stays kept: its own follow-up continues it, with the reference's second round.
  const hits = e.kept.hits;
  const a2 = await ask(second.question, typedHistory(second));
  assert.equal(e.kept.hits, hits + 1);
  assert.deepEqual(a2.outputTokenIds, second.response_ids);
  // B answers as it does from scratch (its whole prompt, over the picture's kept embeddings).
  e.kept.clear();
  const cold = await ask(second.question);
  assert.deepEqual(b.promptTokenIds, cold.promptTokenIds);
  assert.deepEqual(b.outputTokenIds, cold.outputTokenIds);
  e.kept.clear();
  e.keptImages.clear();
});

Deno.test("a text conversation branching off a kept one starts from a copy of the prefix they share", async () => {
  const e = await engine();
  e.kept.clear();
  const c = caseById("text_only");
  const ask = (
    question: string,
    history: HistoryTurn[] = [],
    generation = { ...greedy32, maxNewTokens: 8 },
  ) => e.chat({ question, images: [], history, maxNum: 6, generation });
  const a = await ask(c.question, [], greedy32);
  assert.deepEqual(a.outputTokenIds, c.response_ids);
  const history: HistoryTurn[] = [[c.question, a.response]];
  const counts = () => [e.kept.borrowed, e.kept.hits];
  // A's follow-up continues A's cache (a take, no copy).
  const [b0, h0] = counts();
  await ask("And what can you do?", history);
  assert.deepEqual(counts(), [b0, h0 + 1]);
  // B asks another second question after A's first round: it shares A's first round but not A's second
  // question, so it cannot continue A's cache; it copies the shared positions and runs only the rest.
  const b = await ask("Tell me a story.", history);
  assert.deepEqual(counts(), [b0 + 1, h0 + 1], "the branch did not copy the shared prefix");
  assert.equal(e.kept.size, 2, "A stays kept beside B");
  // B answers as it does from scratch.
  e.kept.clear();
  const cold = await ask("Tell me a story.", history);
  assert.deepEqual(b.promptTokenIds, cold.promptTokenIds);
  assert.deepEqual(b.outputTokenIds, cold.outputTokenIds);
  // A new conversation asking A's first question again: B's history holds its whole prompt, so it copies all
  // of it but the last id (a new conversation, not a follow-up of B) and answers as the reference.
  const c2 = await ask(c.question, [], greedy32);
  assert.deepEqual(counts(), [b0 + 2, h0 + 1]);
  assert.deepEqual(c2.outputTokenIds, c.response_ids);
  // Another question in a new conversation shares only the system prompt and the user turn's start (44
  // ids here): it copies those, and answers as from scratch.
  const other = await ask("Something else entirely?");
  assert.deepEqual(counts(), [b0 + 3, h0 + 1], "the system prompt was not copied");
  e.kept.clear();
  assert.deepEqual(other.outputTokenIds, (await ask("Something else entirely?")).outputTokenIds);
  // Beside a conversation about a picture alone, nothing is copied: its positions past the system prompt
  // hold the picture.
  e.kept.clear();
  const img = caseById("single_image");
  await e.chat({
    question: img.question,
    images: img.images.map(imageFile),
    history: [],
    maxNum: 1,
    generation: { ...greedy32, maxNewTokens: 1 },
  });
  await ask(c.question);
  assert.deepEqual(counts(), [b0 + 3, h0 + 1], "a text conversation copied from a picture's");
  e.kept.clear();
  e.keptImages.clear();
});

Deno.test("imageLayout numbered prompts like multi_image_chat and never continues a concat round's cache", async () => {
  const e = await engine();
  const c = caseById("two_images_concat");
  const greedy4 = { ...defaultGenerationConfig, maxNewTokens: 4 };
  const ask = (imageLayout: ImageLayout | undefined, history: HistoryTurn[] = [], question = c.question) =>
    e.chat({
      question,
      images: c.images.map((k: string) => imageFile(k)),
      history,
      maxNum: 6,
      ...(imageLayout ? { imageLayout } : {}),
      generation: greedy4,
    });
  const tiles = c.images.map((k: string) => manifest.images[k].num_tiles);
  const concat = await ask(undefined);
  assert.deepEqual(concat.promptTokenIds, Array.from(goldenI32(c.input_ids.file)), "the default is concat");

  const misses = e.kept.misses;
  const numbered = await ask("numbered");
  assert.deepEqual(
    numbered.promptTokenIds,
    buildChatPromptIds(e.tokenizer, {
      question: c.question,
      imageTileCounts: tiles,
      imageLayout: "numbered",
      numImageToken: e.model.tokensPerTile,
    }),
  );
  assert.notDeepEqual(numbered.promptTokenIds, concat.promptTokenIds);
  assert.equal(e.kept.misses, misses + 1, "the numbered round continued the concat round's cache");

  // The follow-up re-renders the first turn numbered and continues that round's cache.
  const hits = e.kept.hits;
  const next = await ask("numbered", numbered.history, "And the first one?");
  assert.deepEqual(
    next.promptTokenIds,
    buildChatPromptIds(e.tokenizer, {
      question: "And the first one?",
      history: numbered.history,
      imageTileCounts: tiles,
      imageLayout: "numbered",
      numImageToken: e.model.tokensPerTile,
    }),
  );
  assert.equal(e.kept.hits, hits + 1, "the numbered follow-up did not reuse its first round's cache");
});

Deno.test("images are prepared together, and the first bad one in request order is the one named", async () => {
  const e = await engine();
  const good = imageFile(caseById("single_image").images[0]);
  // The PNG header (and so the prompt's tile count) survives, the image data does not.
  const truncated = good.slice(0, 120);
  const err = await e.chat({
    question: "What is shown?",
    images: [good, truncated, truncated.slice(0, 110)],
    history: [],
    maxNum: 6,
    generation: greedy32,
  }).then(() => null, (x) => x);
  assert.ok(err instanceof InputError, String(err));
  assert.equal(err.options.param, "images[1]");
  assert.match(err.message, /^images\[1\]: PNG image is corrupt or truncated/);
});

Deno.test("images prepared before a request's turn are taken once, answer alike and keep their errors", async () => {
  const e = await engine();
  const c = caseById("single_image");
  // The JPEG as stored (our decoder gives Pillow's pixels, so the golden answer holds).
  const jpegs = () => c.images.map((k: string) => imageFile(k, true));
  const images = jpegs();
  // A kept KV cache or kept embeddings of an earlier identical round would skip the images altogether.
  const ask = (imgs: Uint8Array[], maxNum = 6) => {
    e.kept.clear();
    e.keptImages.clear();
    return e.chat({ question: c.question, images: imgs, history: [], maxNum, generation: greedy32 });
  };
  e.keptImages.clear();
  const hits = e.earlyImageHits;
  const drop = e.startImagePreparation(images, 6);
  assert.equal(e.earlyImagesHeld, 1);
  const early = await ask(images);
  assert.equal(e.earlyImageHits, hits + 1, "chat did not take the prepared images");
  assert.equal(e.earlyImagesHeld, 0);
  assert.deepEqual(early.outputTokenIds, c.response_ids);
  drop(); // a no-op once taken
  // Its embeddings are kept now: the same pictures need no preparation.
  e.startImagePreparation(jpegs(), 6);
  assert.equal(e.earlyImagesHeld, 0);

  // Prepared for another max_num: not used, and dropped by its request at the end.
  const other = jpegs();
  const dropOther = e.startImagePreparation(other, 2);
  await ask(other);
  assert.equal(e.earlyImageHits, hits + 1);
  dropOther();
  assert.equal(e.earlyImagesHeld, 0);

  // A bad image fails its own request, with the error it would have had at its turn.
  const bad = [imageFile(c.images[0], true).subarray(0, 40)];
  e.startImagePreparation(bad, 6)();
  const late = await ask(bad).catch((err) => err);
  const prepared = e.startImagePreparation(bad, 6);
  const taken = await ask(bad).catch((err) => err);
  prepared();
  assert.ok(late instanceof InputError && taken instanceof InputError);
  assert.equal(taken.message, late.message);
  assert.equal(taken.options.param, "images[0]");

  // A PNG and a TIFF decode on the workers too; bytes of no format we read wait for their turn.
  e.keptImages.clear();
  const dropPng = e.startImagePreparation([imageFile("img1")], 6);
  assert.equal(e.earlyImagesHeld, 1);
  dropPng();
  const tiff = new Uint8Array([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 0, 0]);
  const dropTiff = e.startImagePreparation([tiff], 6);
  assert.equal(e.earlyImagesHeld, 1);
  dropTiff();
  const gif = new TextEncoder().encode("GIF89a and more");
  const dropGif = e.startImagePreparation([gif], 6);
  assert.equal(e.earlyImagesHeld, 0);
  dropGif();

  // At most two requests hold prepared images at once.
  const drops = [0, 1, 2].map(() => e.startImagePreparation(jpegs(), 6));
  assert.equal(e.earlyImagesHeld, 2);
  drops.forEach((d) => d());
  assert.equal(e.earlyImagesHeld, 0);
});

Deno.test("greedy rounds that arrive together run as one batch: golden answers, each streamed, errors and aborts their own", async () => {
  const { e, batched } = await batchEngine();
  const pieces: Record<string, number> = {}; // streamed pieces so far, per case
  const ask = (id: string, extra: Partial<Parameters<typeof e.chat>[0]> = {}) => {
    const c = caseById(id);
    let streamed = "";
    const result = e.chat({
      question: c.question,
      images: c.images.map((k: string) => imageFile(k)),
      history: typedHistory(c),
      maxNum: 6,
      generation: greedy32,
      onText: (d) => {
        streamed += d;
        pieces[id] = (pieces[id] ?? 0) + 1;
      },
      ...extra,
    });
    return result.then((r) => ({ r, streamed, c }), (err) => ({ err, c }));
  };
  const good = imageFile(caseById("single_image").images[0]);
  const aborted = new AbortController();
  const rounds = [
    ask("single_image"),
    ask("two_images_concat"),
    ask("text_only", { generation: { ...greedy32, maxNewTokens: 5 } }),
    ask("single_image", { images: [good.slice(0, 120)] }),
    ask("text_only", { signal: aborted.signal }), // the fifth: past maxBatch, aborted while it waits
  ];
  aborted.abort(new DOMException("gone", "AbortError"));
  // A row that ends is answered then, not when the batch's longest row ends.
  const longPiecesWhenShortAnswered = rounds[2].then(() => pieces["two_images_concat"] ?? 0);
  const [image, twoImages, short, broken, gone] = await Promise.all(rounds);
  assert.equal(batched(), 3, "the three good rounds did not run as one batch");
  const early = await longPiecesWhenShortAnswered;
  assert.ok(early < pieces["two_images_concat"] - 5, `the 5-token row was answered after ${early} pieces`);
  for (const { r, streamed, c } of [image, twoImages] as { r: ChatResult; streamed: string; c: Json }[]) {
    assert.deepEqual(r.outputTokenIds, c.response_ids, c.id);
    assert.equal(r.response, c.response);
    assert.equal(streamed, c.response);
    assert.deepEqual(r.promptTokenIds, Array.from(goldenI32(c.input_ids.file)));
  }
  const s = short as { r: ChatResult; c: Json };
  assert.deepEqual(s.r.outputTokenIds, s.c.response_ids.slice(0, 5), "a row's own max_new_tokens");
  const b = broken as { err: InputError };
  assert.ok(b.err instanceof InputError && b.err.param === "images[0]", String(b.err));
  assert.equal((gone as { err: DOMException }).err.name, "AbortError");
  // The batched rows were kept like rounds run alone. Next, rounds that continue them batch with a new
  // conversation: the second round of the image conversation and a retry of the text round each run only
  // their new tokens over their kept part, and give the reference's answers.
  assert.equal(e.kept.size, 3);
  const hits = e.kept.hits;
  const [round2, retry, fresh] = await Promise.all([
    ask("history_round2"),
    ask("text_only"),
    ask("text_only", { question: "Describe it." }),
  ]) as { r: ChatResult; c: Json }[];
  assert.equal(e.kept.hits, hits + 2, "the follow-ups did not continue the batched rows' caches");
  assert.equal(batched(), 6, "the follow-ups and the new round did not run as one batch");
  assert.deepEqual(round2.r.outputTokenIds, round2.c.response_ids);
  assert.deepEqual(retry.r.outputTokenIds, retry.c.response_ids);
  e.kept.clear();
  const alone = await ask("text_only", { question: "Describe it." }) as { r: ChatResult };
  assert.deepEqual(fresh.r.outputTokenIds, alone.r.outputTokenIds, "the new round in that batch");
  assert.equal(batched(), 6, "a lone round runs on its own");
});

Deno.test("rounds batched together take their pictures' kept embeddings; the others encode in one pass", async () => {
  const { e, batched } = await batchEngine();
  const single = caseById("single_image"), two = caseById("two_images_concat"), bc = caseById("batch_chat");
  const other = { question: bc.questions[0], images: [bc.images[0]] };
  const ask = (c: Json, generation = greedy32) =>
    e.chat({ question: c.question, images: c.images.map(imageFile), history: [], maxNum: 6, generation });
  const counts = () => [e.keptImages.hits, e.keptImages.misses];
  // A round alone keeps its picture's embeddings.
  await ask(single, { ...greedy32, maxNewTokens: 1 });
  assert.equal(e.keptImages.size, 1);
  e.kept.clear();
  // Rounds whose pictures are new encode in one pass, and none is kept from it (with LLM.int8 the pass's
  // outlier columns depend on every tile in it); the kept one between them is copied into its place.
  const [h, m] = counts(), b = batched();
  const three = await Promise.all([ask(other), ask(single), ask(two)]);
  assert.equal(batched() - b, 3, "the three rounds did not run as one batch");
  assert.deepEqual(counts(), [h + 1, m + 2]);
  assert.equal(three[0].response, bc.samples[0].response);
  assert.deepEqual(three.slice(1).map((r) => r.outputTokenIds), [single.response_ids, two.response_ids]);
  assert.equal(e.keptImages.size, 1);

  // A round about a kept conversation's picture with another question starts from a copy of its image block,
  // beside a round of text; it answers as it does from scratch. (The picture's embeddings are kept.)
  e.kept.clear();
  await ask(single, { ...greedy32, maxNewTokens: 1 });
  const text = caseById("text_only");
  const another = { question: "And what else is in it?", images: single.images };
  const c0 = e.kept.borrowed, b3 = batched();
  const greedy8 = { ...greedy32, maxNewTokens: 8 };
  const [copied, plain] = await Promise.all([ask(another, greedy8), ask(text, greedy8)]);
  assert.equal(batched() - b3, 2, "the two rounds did not run as one batch");
  assert.equal(e.kept.borrowed, c0 + 1);
  assert.deepEqual(plain.outputTokenIds, text.response_ids.slice(0, 8));
  e.kept.clear(); // from scratch: the whole prompt, over the picture's kept embeddings
  assert.deepEqual(copied.outputTokenIds, (await ask(another, greedy8)).outputTokenIds);
  e.kept.clear();
  e.keptImages.clear();
});

Deno.test("sampled rounds that arrive together batch and draw what each draws alone with its seed", async () => {
  const { e, batched, joins } = await batchEngine();
  const c = caseById("text_only");
  const images: Uint8Array[] = [];
  const sampled = { ...greedy32, doSample: true, temperature: 1.5, topP: 0.95, topK: 0, maxNewTokens: 24 };
  const ask = (seed: number, question = c.question) =>
    e.chat({ question, images, history: [], maxNum: 6, generation: { ...sampled, seed } });
  const seeds = [1, 2, 3];
  const together = await Promise.all(
    seeds.map((seed, i) => ask(seed, i === 1 ? "Describe it." : c.question)),
  );
  assert.equal(batched(), 3, "the sampled rounds did not run as one batch");
  e.kept.clear(); // alone, each round must start from its prompt, not from the batch's kept rows
  const alone: ChatResult[] = [];
  for (const [i, seed] of seeds.entries()) {
    alone.push(await ask(seed, i === 1 ? "Describe it." : c.question));
    assert.deepEqual(together[i].outputTokenIds, alone[i].outputTokenIds, `seed ${seed}`);
    e.kept.clear();
  }
  assert.equal(batched(), 3);
  // A sampled round that arrives while another generates joins it; the running row goes on drawing at its
  // own steps (and the joining one from its first), so both draw what they drew alone. Joined by a pause at
  // once (JOIN_CHUNK_TOKENS=0): in pieces beside it, the newcomer would outlive this short round.
  let pieces = 0;
  let joiner: Promise<ChatResult> | null = null;
  const chunkTokens = e.joinChunkTokens;
  e.joinChunkTokens = 0;
  let running: ChatResult;
  try {
    running = await e.chat({
      question: c.question,
      images,
      history: [],
      maxNum: 6,
      generation: { ...sampled, seed: 1 },
      onText: () => ++pieces === 2 && (joiner = ask(3)),
    });
  } finally {
    e.joinChunkTokens = chunkTokens;
  }
  const late = await joiner!;
  assert.equal(batched(), 5, "the late sampled round did not join the running one");
  assert.equal(joins(), 1);
  assert.deepEqual(running.outputTokenIds, alone[0].outputTokenIds, "the paused row, seed 1");
  assert.deepEqual(late.outputTokenIds, alone[2].outputTokenIds, "the joining row, seed 3");
  assert.notDeepEqual(
    together[0].outputTokenIds,
    together[2].outputTokenIds,
    "the seeds made no difference",
  );
});

Deno.test("a new conversation joining a running batch runs its prompt pass in pieces between the batch's steps", async () => {
  const { e, batched, joins } = await batchEngine();
  const img = caseById("single_image"), text = caseById("text_only");
  // Sampled at a high temperature, with this seed the running round makes all its 64 tokens (no early eos),
  // so it still submits steps while the joiner's pass runs (12 are in flight at any time).
  const long = {
    ...greedy32,
    maxNewTokens: 64,
    doSample: true,
    temperature: 3,
    topP: 0.95,
    topK: 0,
    seed: 6,
  };
  const ask = (c: Json, generation: GenerationConfig, onText?: () => void) =>
    e.chat({
      question: c.question,
      images: c.images.map(imageFile),
      history: [],
      maxNum: 6,
      generation,
      onText,
    });
  const aloneRunning = await ask(text, long);
  e.kept.clear();
  // The joiner decodes alike (batchKey), with a seed of its own.
  const joinerGeneration = { ...long, seed: 9 };
  const aloneJoiner = await ask(img, joinerGeneration);
  e.kept.clear();
  e.keptImages.clear(); // the joiner encodes its image in pieces
  assert.equal(aloneRunning.outputTokenIds.length, 64, "the running round must not end early for this test");
  const [b0, j0, i0] = [batched(), joins(), e.interleavedJoins];
  // A piece goes in every 2 steps (one a readback group, cut to defaultStepsBesideWork steps by the piece):
  // with 512 ids a piece, the vision encoder's two pieces (one layer each: the tiny model's layers cost more
  // than 512 ids of its language model) and two prompt pieces take 8 of the running round's steps, well
  // inside the ~51 it has left when the joiner arrives.
  const chunkTokens = e.joinChunkTokens;
  e.joinChunkTokens = 512;
  const joinerCapacity = aloneJoiner.promptTokenIds.length - 1;
  const newRunner = e.model.newRunner.bind(e.model);
  // The joiner arriving after the running round's first piece of text: what each runner records, in order
  // (the joiner's pieces: a one-row runner holding its prompt but the last id; the running batch's decode
  // steps), and both rounds' results.
  const joinBeside = async () => {
    const events: string[] = [];
    e.model.newRunner = (batch, capacity) => {
      const runner = newRunner(batch, capacity);
      const recordPrefill = runner.recordPrefill.bind(runner),
        recordDecode = runner.recordDecode.bind(runner);
      const joiner = batch === 1 && capacity === joinerCapacity;
      runner.recordPrefill = (r, ids, ...rest) => {
        if (joiner) events.push(`piece ${ids[0].length}`);
        return recordPrefill(r, ids, ...rest);
      };
      runner.recordDecode = (r, ...rest) => {
        if (!joiner) events.push("step");
        return recordDecode(r, ...rest);
      };
      return runner;
    };
    const beginImageEncoding = e.model.beginImageEncoding.bind(e.model);
    e.model.beginImageEncoding = (...args) => {
      const encoding = beginImageEncoding(...args);
      const step = encoding.step.bind(encoding);
      encoding.step = () => {
        events.push(`vision ${args[2].layersPerPiece}`);
        return step();
      };
      return encoding;
    };
    let joinerDone: Promise<ChatResult> | null = null;
    let pieces = 0;
    const running = await ask(text, long, () => ++pieces === 1 && (joinerDone = ask(img, joinerGeneration)));
    const joined = await joinerDone!;
    delete (e.model as { newRunner?: unknown }).newRunner;
    delete (e.model as { beginImageEncoding?: unknown }).beginImageEncoding;
    return { events, running, joined };
  };
  try {
    const { events, running, joined } = await joinBeside();
    const at = events.flatMap((x, i) => x === "step" ? [] : [i]);
    assert.deepEqual(
      at.map((i) => events[i]),
      ["vision 1", "vision 1", "piece 512", "piece 325"],
      "the joiner's encoder a layer a piece, then its prompt in pieces",
    );
    for (let i = 1; i < at.length; i++) {
      const steps = at[i] - at[i - 1] - 1;
      assert.equal(
        steps,
        defaultStepsBesideWork,
        `one piece a readback group of ${defaultStepsBesideWork} steps, ${steps} between two: ${events}`,
      );
    }
    assert.deepEqual(running.outputTokenIds, aloneRunning.outputTokenIds, "the running row");
    assert.deepEqual(joined.outputTokenIds, aloneJoiner.outputTokenIds, "the joiner");
    assert.equal(batched() - b0, 2, "the joiner did not run beside the running round");
    assert.equal(joins() - j0, 1, "one pause, once the joiner's pass was done");
    assert.equal(e.interleavedJoins - i0, 1);

    // Its picture's embeddings are kept now: asked again in a new conversation, the joiner brings them, so its
    // pass is its prompt's pieces alone, and it answers alike.
    e.kept.clear();
    const imageHits = e.keptImages.hits;
    const kept = await joinBeside();
    assert.deepEqual(kept.events.filter((x) => x !== "step"), ["piece 512", "piece 325"]);
    assert.equal(e.keptImages.hits, imageHits + 1);
    assert.deepEqual(kept.running.outputTokenIds, aloneRunning.outputTokenIds, "the running row");
    assert.deepEqual(
      kept.joined.outputTokenIds,
      aloneJoiner.outputTokenIds,
      "the joiner with kept embeddings",
    );
    assert.equal(e.interleavedJoins - i0, 2);

    // Another question about that picture while the joiner's conversation is kept: the running rows pause for
    // it at once, and it starts from a copy of that conversation's image block, with no pass in pieces.
    const another = { ...img, question: "And what else is in it?" };
    const [c1, ij1, j1] = [e.kept.borrowed, e.interleavedJoins, joins()];
    let copiedDone: Promise<ChatResult> | null = null;
    let m = 0;
    const short16 = { ...joinerGeneration, maxNewTokens: 16 };
    const running2 = await ask(text, long, () => ++m === 1 && (copiedDone = ask(another, short16)));
    const copied = await copiedDone!;
    assert.equal(e.interleavedJoins, ij1, "it ran its pass in pieces");
    assert.equal(e.kept.borrowed, c1 + 1);
    assert.equal(joins() - j1, 1);
    assert.deepEqual(running2.outputTokenIds, aloneRunning.outputTokenIds, "the running row");
    e.kept.clear(); // from scratch: the whole prompt, over the picture's kept embeddings
    assert.deepEqual(copied.outputTokenIds, (await ask(another, short16)).outputTokenIds);
    e.kept.clear();

    // A joiner whose image turns out corrupt while the batch runs, and one aborted after its first piece, fail
    // alone; the running row goes on as alone. A joiner the running round does not outlast (seed 2: 4 tokens)
    // finishes its pass alone, then answers as alone.
    const good = imageFile(img.images[0]);
    const bad = (onText?: () => void) =>
      e.chat({
        question: img.question,
        images: [good.slice(0, 120)], // the PNG header survives (the prompt is planned), its data does not
        history: [],
        maxNum: 6,
        generation: joinerGeneration,
        onText,
      });
    const abort = new AbortController();
    let aborting = false;
    e.model.newRunner = (batch, capacity) => {
      const runner = newRunner(batch, capacity);
      if (batch === 1 && capacity === joinerCapacity) {
        const recordPrefill = runner.recordPrefill.bind(runner);
        runner.recordPrefill = (...args) => {
          if (aborting) abort.abort(new DOMException("gone", "AbortError"));
          return recordPrefill(...args);
        };
      }
      return runner;
    };
    let failures: Promise<unknown>[] = [];
    let n = 0;
    // The running rounds here need only outlast a joiner that fails early: their first 32 tokens.
    const long32 = { ...long, maxNewTokens: 32 };
    const again = await ask(text, long32, () => {
      if (++n !== 1) return;
      failures = [bad().then(() => null, (x) => x)];
    });
    n = 0;
    aborting = true;
    const again2 = await ask(text, long32, () => {
      if (++n !== 1) return;
      failures.push(
        e.chat({
          question: img.question,
          images: img.images.map(imageFile),
          history: [],
          maxNum: 6,
          generation: joinerGeneration,
          signal: abort.signal,
        }).then(() => null, (x) => x),
      );
    });
    aborting = false;
    delete (e.model as { newRunner?: unknown }).newRunner;
    const [badErr, abortErr] = await Promise.all(failures);
    assert.equal(
      e.interleavedJoins - i0,
      4,
      "the failing rounds did not start their passes beside the batch",
    );
    assert.ok(
      badErr instanceof InputError && /PNG image is corrupt or truncated/.test(badErr.message),
      `${badErr}`,
    );
    assert.equal((abortErr as DOMException)?.name, "AbortError", `${abortErr}`);
    assert.deepEqual(
      again.outputTokenIds,
      aloneRunning.outputTokenIds.slice(0, 32),
      "the running row beside a bad joiner",
    );
    assert.deepEqual(
      again2.outputTokenIds,
      aloneRunning.outputTokenIds.slice(0, 32),
      "the running row beside an aborted one",
    );
    const i1 = e.interleavedJoins;
    let late: Promise<ChatResult> | null = null;
    n = 0;
    const short = await ask(
      text,
      { ...long, seed: 2 },
      () => ++n === 1 && (late = ask(img, joinerGeneration)),
    );
    assert.ok(short.outputTokenIds.length < 12, `the short round made ${short.outputTokenIds.length} tokens`);
    assert.deepEqual(
      (await late!).outputTokenIds,
      aloneJoiner.outputTokenIds,
      "a joiner that outlived its batch",
    );
    assert.equal(e.interleavedJoins - i1, 1);
  } finally {
    // The engine is shared: its own setting and newRunner again, whatever failed.
    e.joinChunkTokens = chunkTokens;
    delete (e.model as { newRunner?: unknown }).newRunner;
    delete (e.model as { beginImageEncoding?: unknown }).beginImageEncoding;
  }
});

Deno.test("a round aborted while its batch generates stops alone; a round arriving mid-generation joins it", async () => {
  const { e, batched, joins } = await batchEngine();
  const two = caseById("two_images_concat"), text = caseById("text_only");
  const abort = new AbortController();
  let pieces = 0;
  const [stopped, finished] = await Promise.all([
    e.chat({
      question: two.question,
      images: two.images.map((k: string) => imageFile(k)),
      history: [],
      maxNum: 6,
      generation: greedy32,
      signal: abort.signal,
      onText: () => ++pieces === 1 && abort.abort(new DOMException("gone", "AbortError")),
    }),
    e.chat({ question: text.question, images: [], history: [], maxNum: 6, generation: greedy32 }),
  ]);
  assert.equal(batched(), 2);
  assert.deepEqual(finished.outputTokenIds, text.response_ids);
  assert.ok(stopped.outputTokenIds.length < two.response_ids.length, "the aborted row ran to its end");
  assert.deepEqual(stopped.outputTokenIds, two.response_ids.slice(0, stopped.outputTokenIds.length));
  assert.equal(e.kept.size, 1, "an aborted row's cache is not kept");

  // A round that arrives while another generates joins it at the next step instead of waiting for its end:
  // the running row pauses and goes on from its own cache beside the newcomer, and both answer as alone.
  e.kept.clear();
  const joined = batched();
  // Every batched prompt pass, as [rows, positions]: a newcomer's prompt runs on its own first, so the
  // batch it joins feeds one new token a row, not every paused row padded to the newcomer's prompt.
  const passes: [number, number][] = [];
  const newRunner = e.model.newRunner.bind(e.model);
  e.model.newRunner = (batch, capacity) => {
    const runner = newRunner(batch, capacity);
    const recordPrefill = runner.recordPrefill.bind(runner);
    runner.recordPrefill = (r, ids, ...rest) => {
      passes.push([ids.length, ids[0].length]);
      return recordPrefill(r, ids, ...rest);
    };
    return runner;
  };
  let longPieces = 0, longEnded = false, joinerStartedFirst = false;
  let joiner: Promise<ChatResult> | null = null;
  const long = await e.chat({
    question: two.question,
    images: two.images.map((k: string) => imageFile(k)),
    history: [],
    maxNum: 6,
    generation: greedy32,
    onText: () => {
      if (++longPieces !== 2) return;
      joiner = e.chat({
        question: text.question,
        images: [],
        history: [],
        maxNum: 6,
        generation: greedy32,
        onText: () => joinerStartedFirst ||= !longEnded,
      });
    },
  }).then((r) => {
    longEnded = true;
    return r;
  });
  const late = await joiner!;
  assert.deepEqual(long.outputTokenIds, two.response_ids, "the paused row went on as alone");
  assert.deepEqual(late.outputTokenIds, text.response_ids, "the joining round");
  assert.equal(batched(), joined + 2, "the late round did not join the running one");
  assert.equal(joins(), 1, "one pause let it join");
  assert.deepEqual(passes.filter(([rows]) => rows > 1), [[2, 1]], "the joined batch's prompt pass");
  // The engine is shared: its own newRunner again (the prototype's).
  delete (e.model as { newRunner?: unknown }).newRunner;
  assert.ok(joinerStartedFirst, "the late round's first text came only after the running round ended");
  assert.equal(e.kept.size, 2, "both rows are kept");

  // With a repetition penalty the paused row counts the ids it made before the pause as seen.
  const penalised = { ...greedy32, repetitionPenalty: 1.5 };
  const ask = (q: typeof two, onText?: () => void) =>
    e.chat({
      question: q.question,
      images: q.images.map((k: string) => imageFile(k)),
      history: [],
      maxNum: 6,
      generation: penalised,
      onText,
    });
  e.kept.clear();
  const aloneLong = await ask(two);
  e.kept.clear();
  const aloneText = await ask(text);
  e.kept.clear();
  let n = 0;
  let penalisedJoiner: Promise<ChatResult> | null = null;
  const penalisedLong = await ask(two, () => ++n === 2 && (penalisedJoiner = ask(text)));
  const penalisedLate = await penalisedJoiner!;
  assert.equal(batched(), joined + 4, "the penalised round did not join");
  assert.deepEqual(penalisedLong.outputTokenIds, aloneLong.outputTokenIds, "the paused penalised row");
  assert.deepEqual(penalisedLate.outputTokenIds, aloneText.outputTokenIds, "the joining penalised row");
  assert.notDeepEqual(aloneLong.outputTokenIds, two.response_ids, "the penalty changed nothing");
});

// Here rather than in tests/model/vision_scratch_pool_test.ts: on the engine's device, whose warm-up has built
// every pipeline, two more warm-ups take ~2 s each on llvmpipe; in a process of its own the first one spent
// ~17 s compiling the language model's pipelines, which no other test of that file needs.
Deno.test("warmUp keeps a 7-tile vision scratch when the budget allows, none when it is off", async () => {
  const m = (await engine()).model;
  const model = (budget: number) =>
    InternVLModel.fromWeights(m.gpu, m.dims, m.vision, m.projector, m.language, m.matmul, budget);
  const encode = async (on: InternVLModel, values: Float32Array, tiles: number) => {
    const out = on.encodeImages(values, tiles);
    try {
      return new Uint32Array(await on.gpu.readBytes(out));
    } finally {
      out.buffer.destroy();
    }
  };
  const kept = model(2 ** 40);
  const off = model(0);
  try {
    await kept.warmUp();
    assert.equal(kept.visionScratch.heldTiles, 7);
    assert.equal(kept.visionScratch.allocations, 1, "the warm-up's 1-tile pass ran in the 7-tile scratch");
    await off.warmUp();
    assert.equal(off.visionScratch.heldTiles, 0);
    assert.equal(off.visionScratch.allocations, 1, "no 7-tile scratch built only to be dropped");

    // Fewer tiles than 7: served by the kept scratch, bit for bit what a model that keeps none computes.
    const img = await preprocessImage(imageFile("img3"), {
      maxNum: manifest.images.img3.max_num,
      maxPixels: 1e8,
    });
    assert.ok(img.tiles > 1 && img.tiles <= 7);
    const got = await encode(kept, img.pixelValues, img.tiles);
    const want = await encode(off, img.pixelValues, img.tiles);
    assert.equal(got.length, want.length);
    const i = got.findIndex((x, j) => x !== want[j]);
    assert.equal(i, -1, `embeddings: word ${i} differs`);
    assert.equal(kept.visionScratch.allocations, 1, "the first image request built no scratch");
  } finally {
    kept.releaseScratch();
    off.releaseScratch();
  }
});

Deno.test("rounds past 8 rows generate in row groups, each giving the reference answer", async () => {
  // MAX_BATCH past the matrix-vector kernels' 8 rows: the batch's steps run in row groups (PERF.md v55).
  // No warm-up: pipelines are not what this checks.
  const e = await WebGpuEngine.load({ modelDir, randomWeights: true, maxBatch: 12, warmUp: false });
  let rows = 0;
  const newRunner = e.model.newRunner.bind(e.model);
  e.model.newRunner = (batch, capacity) => {
    rows = Math.max(rows, batch);
    return newRunner(batch, capacity);
  };
  // Eight text rounds of their own lengths, then two with an image: rows 8–9, the second group, whose rows
  // differ from the first group's.
  const text = caseById("text_only"), image = caseById("single_image");
  const lengths = [12, 5, 12, 8, 12, 10, 6, 12];
  const asked = [...lengths.map((n) => ({ c: text, n })), { c: image, n: 12 }, { c: image, n: 12 }];
  const results = await Promise.all(asked.map(({ c, n }) =>
    e.chat({
      question: c.question,
      images: c.images.map((k: string) => imageFile(k)),
      history: [],
      maxNum: 6,
      generation: { ...greedy32, maxNewTokens: n },
    })
  ));
  assert.ok(rows > 8, `the rounds ran in batches of at most ${rows} rows`);
  assert.equal(e.batchedRounds, 10);
  results.forEach((r, i) => {
    const { c, n } = asked[i];
    assert.deepEqual(r.outputTokenIds, c.response_ids.slice(0, n), `round ${i}, ${c.id}`);
  });
});
