import assert from "node:assert/strict";
import { preprocessImage } from "../../src/image/pixel_values.ts";
import { InternVLModel } from "../../src/model/internvl.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import type { Recorder } from "../../src/gpu/recorder.ts";
import type { LinearWeights } from "../../src/ops/linear.ts";
import { LmRunner } from "../../src/model/lm_runner.ts";
import { LanguageScratch, maxGroupedStepRows } from "../../src/model/language.ts";
import {
  copyRowHeadPrefetch,
  defaultRowHeadPrefetch,
  parseRowHeadPrefetch,
  rowHeadPrefetch,
  type RowHeadProduct,
} from "../../src/ops/prefetch_row_heads.ts";
import { packBf16 } from "../../src/ref/kv_bf16.ts";
import { generate, type GenerateOptions } from "../../src/engine/generate.ts";
import { defaultGenerationConfig } from "../../src/engine/types.ts";
import {
  caseById,
  compare,
  goldenF32,
  goldenI32,
  imageFile,
  type Json,
  manifest,
  tinyModel,
} from "./tiny_fixture.ts";

// README: prompt and step logits max |Δ| ≤ 1e-3 with f32 math (logits of magnitude ~10).
const logitTol = 1e-3;
const imageContextId = manifest.tokenizer.special_ids["<IMG_CONTEXT>"];
const imEndId = manifest.tokenizer.special_ids["<|im_end|>"];
const greedy32 = { ...defaultGenerationConfig, maxNewTokens: 32 };

const embedsByImages = new Map<string, Promise<Tensor | null>>();

/**
 * The image embeddings of `keys` (their tiles in order), encoded once per file run and kept: these tests
 * check the language model on given embeddings, and the same images come back in several of them (img3 in
 * two cases, img1 + img2 in two_images_concat and batch_chat). On llvmpipe a tile costs ~0.5 s of ViT, and
 * encoding per test made ~40 tiles instead of 13. The encoder itself is checked against the goldens in
 * vision_test.ts, and repeated encodes giving the same bits in vision_scratch_pool_test.ts.
 */
function imageEmbeds(model: InternVLModel, keys: string[]): Promise<Tensor | null> {
  const id = keys.join("+");
  if (!embedsByImages.has(id)) embedsByImages.set(id, encodeImages(model, keys));
  return embedsByImages.get(id)!;
}

async function encodeImages(model: InternVLModel, keys: string[]): Promise<Tensor | null> {
  if (keys.length === 0) return null;
  const parts = [];
  for (const key of keys) {
    parts.push(
      await preprocessImage(imageFile(key), { maxNum: manifest.images[key].max_num, maxPixels: 1e8 }),
    );
  }
  const pixels = new Float32Array(parts.reduce((n, p) => n + p.pixelValues.length, 0));
  let at = 0;
  for (const p of parts) {
    pixels.set(p.pixelValues, at);
    at += p.pixelValues.length;
  }
  return model.encodeImages(pixels, parts.reduce((n, p) => n + p.tiles, 0));
}

/** Argmax that ignores a golden near-tie: the README forgives a divergence only where top-2 are within tolerance. */
function assertSameChoice(logits: Float32Array, step: Json, where: string) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  const gap = step.top5_logits[0] - step.top5_logits[1];
  if (gap > 2 * logitTol) assert.equal(best, step.id, `${where}: argmax ${best}, reference ${step.id}`);
}

const chatCases = ["single_image", "history_round2", "two_images_concat", "text_only"];

for (const id of chatCases) {
  Deno.test(`${id}: prompt and teacher-forced step logits match the reference`, async () => {
    const model = await tinyModel();
    const c = caseById(id);
    const ids = Array.from(goldenI32(c.input_ids.file));
    const embeds = await imageEmbeds(model, c.images);
    const runner = model.newRunner(1, ids.length + c.max_new_tokens);
    const stepLogits = goldenF32(c.all_step_logits.file);
    const V = model.dims.language.vocab;
    const next = model.gpu.createTensor("test.next", "i32", [1]);
    try {
      const r = model.gpu.recorder("test.prefill");
      const free = runner.recordPrefill(r, [ids], [ids.map(() => 1)], imageContextId, embeds);
      r.submit();
      let logits = await model.gpu.readF32(runner.logits);
      free();
      const first = compare(logits, goldenF32(c.prompt_last_logits.file));
      assert.ok(first.maxAbs <= logitTol, `prompt logits max |Δ| ${first.maxAbs}`);
      for (let s = 0; s < c.max_new_tokens; s++) {
        if (s > 0) {
          model.gpu.writeTensor(next, Int32Array.of(c.generated_ids[s - 1]));
          const r = model.gpu.recorder("test.decode");
          runner.recordDecode(r, next);
          r.submit();
          logits = await model.gpu.readF32(runner.logits);
        }
        const { maxAbs } = compare(logits, stepLogits.subarray(s * V, (s + 1) * V));
        assert.ok(maxAbs <= logitTol, `step ${s}: max |Δ| ${maxAbs}`);
        assertSameChoice(logits, c.steps[s], `step ${s}`);
      }
    } finally {
      runner.destroy();
      next.buffer.destroy();
    }
  });
}

/** A chat case's ids greedily for 32 tokens with eos disabled, as in the golden 32-token trace. */
function generateCase(
  model: InternVLModel,
  ids: number[],
  embeds: Tensor | null,
  options: Partial<GenerateOptions> = {},
): Promise<number[][]> {
  return generate(model, { ids: [ids], mask: [ids.map(() => 1)], imageEmbeds: embeds }, greedy32, {
    eosId: -1,
    imageContextId,
    ...options,
  });
}

Deno.test("free-running greedy decoding reproduces every case's 32 generated ids", async (t) => {
  const model = await tinyModel();
  for (const id of chatCases) {
    await t.step(id, async () => {
      const c = caseById(id);
      const ids = Array.from(goldenI32(c.input_ids.file));
      const embeds = await imageEmbeds(model, c.images);
      const [out] = await generateCase(model, ids, embeds);
      assert.deepEqual(out, c.generated_ids);
    });
  }
});

/** The batch_chat case as generate() takes it (left-padded ids, mask, image rows) and its answers up to eos. */
async function batchChatCase(model: Awaited<ReturnType<typeof tinyModel>>) {
  const c = caseById("batch_chat");
  const [B, L] = c.input_ids.shape;
  const flatIds = goldenI32(c.input_ids.file), flatMask = goldenI32(c.attention_mask.file);
  const ids = Array.from({ length: B }, (_, b) => Array.from(flatIds.subarray(b * L, (b + 1) * L)));
  const mask = Array.from({ length: B }, (_, b) => Array.from(flatMask.subarray(b * L, (b + 1) * L)));
  const embeds = await imageEmbeds(model, c.images);
  const want: number[][] = Array.from({ length: B }, (_, b) => {
    const golden: number[] = c.samples[b].generated_ids;
    const stop = golden.indexOf(imEndId);
    return stop >= 0 ? golden.slice(0, stop + 1) : golden;
  });
  return { c, B: B as number, ids, mask, embeds, want };
}

Deno.test("batch_chat: left-padded batch reproduces each sample and equals the unbatched runs", async () => {
  const model = await tinyModel();
  const { c, B, ids, mask, embeds, want } = await batchChatCase(model);
  const outs = await generate(model, { ids, mask, imageEmbeds: embeds }, greedy32, {
    eosId: imEndId,
    imageContextId,
  });
  for (let b = 0; b < B; b++) assert.deepEqual(outs[b], want[b], `sample ${b}`);
  // Each sample alone (no padding, its own image) gives the same ids.
  const counts: number[] = c.image_counts;
  for (let b = 0; b < B; b++) {
    const alone = ids[b].filter((_, t) => mask[b][t] === 1);
    const emb = await imageEmbeds(model, [c.images[b]]);
    assert.equal(emb?.shape[0], counts[b] * 256);
    const [out] = await generate(
      model,
      { ids: [alone], mask: [alone.map(() => 1)], imageEmbeds: emb },
      greedy32,
      {
        eosId: imEndId,
        imageContextId,
      },
    );
    assert.deepEqual(out, outs[b], `sample ${b} alone`);
  }
});

Deno.test("generate reports every step once and in order however its readbacks are grouped", async (t) => {
  const model = await tinyModel();
  const { ids, mask, embeds, want } = await batchChatCase(model);
  // Rows stop at <|im_end|> at different steps, so a stop lands inside a group for some grouping.
  for (const [stepsPerReadback, inFlight] of [[1, 1], [3, 5], [5, 7], [4, 12]]) {
    await t.step(`${stepsPerReadback} steps per readback, ${inFlight} in flight`, async () => {
      const steps: number[][] = [];
      const outs = await generate(model, { ids, mask, imageEmbeds: embeds }, greedy32, {
        eosId: imEndId,
        imageContextId,
        stepsPerReadback,
        inFlight,
        onStep: (s) => steps.push(s),
      });
      assert.deepEqual(outs, want);
      // Step k reports row b's k-th id until the row has stopped, −1 after.
      assert.equal(steps.length, Math.max(...want.map((w) => w.length)));
      steps.forEach((s, k) => assert.deepEqual(s, want.map((w) => k < w.length ? w[k] : -1), `step ${k}`));
    });
  }
});

Deno.test("generate stops a row at its own token limit or its own abort, the other rows unchanged", async () => {
  const model = await tinyModel();
  const { B, ids, mask, embeds, want } = await batchChatCase(model);
  assert.ok(want[0].length > 3, "the case's first row is too short for this test");
  const run = (rowMaxNewTokens?: number[], rowSignals?: AbortSignal[], onStep?: () => void) =>
    generate(model, { ids, mask, imageEmbeds: embeds }, greedy32, {
      eosId: imEndId,
      imageContextId,
      rowMaxNewTokens,
      rowSignals,
      onStep,
    });
  const limited = await run([3, ...new Array(B - 1).fill(32)]);
  assert.deepEqual(limited, [want[0].slice(0, 3), ...want.slice(1)]);
  // Row 0 aborted once its second token is out: later steps of the same readback no longer count.
  const abort = new AbortController();
  let steps = 0;
  const aborted = await run(undefined, [abort.signal], () => ++steps === 2 && abort.abort());
  assert.deepEqual(aborted, [want[0].slice(0, 2), ...want.slice(1)]);
  await assert.rejects(
    run([33, ...new Array(B - 1).fill(1)]),
    /rowMaxNewTokens must give each of \d+ rows 1\.\.32/,
  );
});

Deno.test("generate hands a response's first tokens out once their readback settles, not when the in-flight window is full", async () => {
  // Deno settles a map ~10 ms after its (blocking) call, and only while the event loop runs. The loop used to
  // take readbacks only with `inFlight` steps submitted, so the first token of a response waited for ~8
  // more steps. Counted in submits: with 40 steps in flight it must arrive long before the 40th.
  const model = await tinyModel();
  const ids = [Array.from({ length: 23 }, (_, i) => 100 + 7 * i)]; // a text-only prompt
  const mask = [ids[0].map(() => 1)];
  const queue = model.gpu.device.queue;
  let submits = 0;
  const submit = queue.submit;
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    submits++;
    // Slow enough (a few ms a step, as on a GPU) that 10 ms pass within the window whatever the machine.
    const until = performance.now() + 2;
    while (performance.now() < until);
    return submit.call(queue, buffers);
  };
  const at: number[] = [];
  try {
    const outs = await generate(model, { ids, mask, imageEmbeds: null }, {
      ...defaultGenerationConfig,
      maxNewTokens: 48,
    }, { eosId: -1, imageContextId, inFlight: 40, stepsPerReadback: 4, onStep: () => at.push(submits) });
    assert.equal(outs[0].length, 48);
  } finally {
    queue.submit = submit;
  }
  assert.equal(at.length, 48, "every step reported");
  assert.ok(at[0] <= 20, `the first token came out after ${at[0]} submits (in flight: 40)`);
  assert.ok(at[1] <= 24, `the second token came out after ${at[1]} submits`);
});

Deno.test("generate hands each readback's tokens out before the next readback drains the queue", async () => {
  // A step whose readback is mapped blocks the thread until the GPU has run everything queued (at the real
  // shapes a joining round's piece and four steps, 0.15–0.3 s), so tokens not handed out before it reach the
  // client a whole group late. The readback ahead of it has run by then; the loop used to give it a few ms to
  // settle and drained without it when it lost that race (H100: 0.42–0.60 s gaps, PERF.md v47). Here every
  // map settles 15 ms late, as a slower runtime's would: at the readback of group g (steps 4g−3 … 4g), every
  // step up to 4(g−1) must have been handed out.
  const model = await tinyModel();
  const ids = [Array.from({ length: 19 }, (_, i) => 200 + 11 * i)];
  const mask = [ids[0].map(() => 1)];
  const device = model.gpu.device;
  const createBuffer = device.createBuffer;
  device.createBuffer = (descriptor: GPUBufferDescriptor) => {
    const buffer = createBuffer.call(device, descriptor);
    if (descriptor.usage & GPUBufferUsage.MAP_READ) {
      const mapAsync = buffer.mapAsync;
      buffer.mapAsync = (mode: GPUMapModeFlags, offset?: number, size?: number) =>
        mapAsync.call(buffer, mode, offset, size).then(() => new Promise((r) => setTimeout(r, 15)));
    }
    return buffer;
  };
  const queue = device.queue;
  const submit = queue.submit;
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    const until = performance.now() + 3; // a step's recording at the real shapes
    while (performance.now() < until);
    return submit.call(queue, buffers);
  };
  const K = 4;
  let reported = 0;
  const atReadback: number[] = [];
  const stats = { lateReadbacks: 0 };
  try {
    await generate(
      model,
      { ids, mask, imageEmbeds: null },
      { ...defaultGenerationConfig, maxNewTokens: 41 },
      {
        eosId: -1,
        imageContextId,
        stepsPerReadback: K,
        onStep: () => reported++,
        prepare: () => atReadback.push(reported),
        stats,
      },
    );
  } finally {
    device.createBuffer = createBuffer;
    queue.submit = submit;
  }
  assert.equal(reported, 41);
  assert.equal(atReadback.length, 1 + 40 / K, "a readback for the first token, then one a group");
  atReadback.forEach((n, g) => {
    const due = g === 0 ? 0 : 1 + (g - 1) * K;
    assert.ok(n >= due, `readback ${g}: ${n} steps handed out before it, ${due} due`);
  });
  assert.equal(stats.lateReadbacks, 0, "readbacks mapped with an earlier one's tokens still held");
});

Deno.test("the step after each readback's drain goes out in two submits, its first dispatches first", async () => {
  // generate() submits the step encoded ahead of a drain in two parts (firstPartDispatches): the ids must be
  // those of one submit a step, and each readback but the last adds exactly one submit.
  const model = await tinyModel();
  const c = caseById(chatCases[0]);
  const ids = Array.from(goldenI32(c.input_ids.file));
  const embeds = await imageEmbeds(model, c.images);
  const queue = model.gpu.device.queue;
  const submit = queue.submit;
  let submits = 0;
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    submits++;
    return submit.call(queue, buffers);
  };
  const run = async (firstPartDispatches: number) => {
    submits = 0;
    const [out] = await generateCase(model, ids, embeds, { stepsPerReadback: 4, firstPartDispatches });
    return { out, submits };
  };
  try {
    const whole = await run(0);
    for (const part of [1, 5, 13]) {
      const split = await run(part);
      assert.deepEqual(split.out, c.generated_ids, `first part of ${part} dispatches`);
      // 32 ids: the prompt's readback, then groups of 4 (steps 1–4 … 29–31, the last one short); the step
      // after each readback but the last is split.
      assert.equal(split.submits - whole.submits, 8, `first part of ${part} dispatches`);
    }
    assert.deepEqual(whole.out, c.generated_ids);
  } finally {
    queue.submit = submit;
  }
});

Deno.test("generate cuts a readback group to stepsBesideWork steps when between submitted work before it", async () => {
  // A joining round's piece runs before its group's steps, and the rows' tokens come out when the group has
  // run: the fewer steps beside a piece, the shorter their wait between two deliveries. Groups 2–4 hold a
  // piece here (between returns true), the others do not.
  const model = await tinyModel();
  const ids = [Array.from({ length: 17 }, (_, i) => 300 + 13 * i)];
  const mask = [ids[0].map(() => 1)];
  const config = { ...defaultGenerationConfig, maxNewTokens: 23 };
  const [plain] = await generate(model, { ids, mask, imageEmbeds: null }, config, {
    eosId: -1,
    imageContextId,
  });
  let calls = 0, reported = 0;
  const atReadback: number[] = [];
  const [cut] = await generate(model, { ids, mask, imageEmbeds: null }, config, {
    eosId: -1,
    imageContextId,
    stepsPerReadback: 4,
    stepsBesideWork: 2,
    onStep: () => reported++,
    between: () => ++calls >= 2 && calls <= 4,
    prepare: () => atReadback.push(reported),
  });
  assert.deepEqual(cut, plain, "the same ids");
  assert.equal(reported, 23);
  // Groups: steps 1–4, then 5–6, 7–8 and 9–10 beside work, then 11–14, 15–18, 19–22. At each readback the
  // groups before it are out (the wait before a drain), and none of its own.
  assert.deepEqual(atReadback, [0, 1, 5, 7, 9, 11, 15, 19]);
  assert.equal(calls, 7, "between once a group");
});

Deno.test("kept sequences adopted into one batch continue as each continues alone (prompt and step logits)", async () => {
  const model = await tinyModel();
  const V = model.dims.language.vocab;
  const text = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => 3 + (seed + i * 7919) % (V - 10)).map((id) =>
      id === imageContextId ? 5 : id
    );
  // Two conversations: kept parts of 37 and 11 positions, new parts of 9 and 16 tokens; a third row new.
  const seqs = [text(46, 1), text(27, 2), text(13, 3)];
  const keptLen = [37, 11, 0];
  const next = model.gpu.createTensor("test.next", "i32", [1]);
  const prefill = (runner: ReturnType<typeof model.newRunner>, ids: number[][], mask: number[][]) => {
    const r = model.gpu.recorder("test.prefill");
    const free = runner.recordPrefill(r, ids, mask, imageContextId, null);
    r.submit();
    return free;
  };
  // Alone: each kept part as its own runner, then its new part continuing it, then one decode step.
  const kept = keptLen.map((n, b) => {
    if (n === 0) return null;
    const runner = model.newRunner(1, 80);
    prefill(runner, [seqs[b].slice(0, n)], [new Array(n).fill(1)])();
    return runner;
  });
  const alone: Float32Array[] = [], aloneStep: Float32Array[] = [];
  let row0: ReturnType<typeof model.newRunner> | null = null;
  for (const [b, seq] of seqs.entries()) {
    const runner = model.newRunner(1, 80);
    if (keptLen[b] > 0) prefill(runner, [seq.slice(0, keptLen[b])], [new Array(keptLen[b]).fill(1)])();
    const rest = seq.slice(keptLen[b]);
    prefill(runner, [rest], [rest.map(() => 1)])();
    alone.push(await model.gpu.readF32(runner.logits));
    model.gpu.writeTensor(next, Int32Array.of(17 + b));
    const r = model.gpu.recorder("test.decode");
    runner.recordDecode(r, next);
    r.submit();
    aloneStep.push(await model.gpu.readF32(runner.logits));
    if (b === 0) row0 = runner;
    else runner.destroy();
  }
  // Batched: the kept parts adopted (right-aligned), the new parts left-padded, one decode step.
  const batch = model.newRunner(3, 90);
  batch.adoptPrefixes(kept, keptLen);
  const rests = seqs.map((seq, b) => seq.slice(keptLen[b]));
  const L = Math.max(...rests.map((r) => r.length));
  const ids = rests.map((r) => [...new Array(L - r.length).fill(0), ...r]);
  const mask = rests.map((r) => [...new Array(L - r.length).fill(0), ...r.map(() => 1)]);
  prefill(batch, ids, mask)();
  const together = await model.gpu.readF32(batch.logits);
  const nexts = model.gpu.uploadTensor("test.nexts", "i32", [3], Int32Array.of(17, 18, 19));
  const r = model.gpu.recorder("test.decode");
  batch.recordDecode(r, nexts);
  r.submit();
  const togetherStep = await model.gpu.readF32(batch.logits);
  for (let b = 0; b < 3; b++) {
    const first = compare(together.subarray(b * V, (b + 1) * V), alone[b]);
    assert.ok(first.maxAbs <= logitTol, `row ${b} prompt logits max |Δ| ${first.maxAbs}`);
    const step = compare(togetherStep.subarray(b * V, (b + 1) * V), aloneStep[b]);
    assert.ok(step.maxAbs <= logitTol, `row ${b} step logits max |Δ| ${step.maxAbs}`);
  }
  // Row 0 taken out again (its kept part, then its new part and the step's token) continues as alone.
  const out = batch.extractRow(0, [[0, 37], [37 + L - 9, 9 + 1]], 80);
  assert.equal(out.cache.length, 47);
  const last: Float32Array[] = [];
  for (const runner of [row0!, out]) {
    model.gpu.writeTensor(next, Int32Array.of(23));
    const r = model.gpu.recorder("test.decode");
    runner.recordDecode(r, next);
    r.submit();
    last.push(await model.gpu.readF32(runner.logits));
    runner.destroy();
  }
  const cont = compare(last[1], last[0]);
  assert.ok(cont.maxAbs <= logitTol, `extracted row's next logits max |Δ| ${cont.maxAbs}`);
  batch.destroy();
  for (const k of kept) k?.destroy();
  nexts.buffer.destroy();
  next.buffer.destroy();
});

// KV_CACHE_DTYPE=bf16 against the f32 cache on the same inputs: a tiled prompt pass (80 tokens: prefill
// attention), teacher-forced decode steps (the fused decode attention), a follow-up round's 9 tokens (chunks
// through the decode attention, oneSequence), and the same row copied out (extractRow) continuing alike.
// Exact: layer 0's keys and values depend on nothing the cache holds, so its bf16 words are the f32 cache's
// values rounded to nearest even, word for word, at every position each path wrote.
// Loose: bf16 keeps 8 significant bits (each stored value moves by ≤ 2^-9 ≈ 2e-3 of itself), but this
// random-weight model amplifies that: rounding only the f32 cache to bf16 before one f32 step moved its
// logits (magnitude ~15) by 3.0 % (relative L2; max |Δ| 0.51), and random relative noise of 2^-10 by 0.9 %.
// The bf16 cache measured ≤ 2.1 % here (5.5 %, max |Δ| 0.86, with one more step), so the bound is 15 % and
// max |Δ| ≤ 2.5; a wrong cache (swapped halves, the wrong element size) is off by ~100 %.
Deno.test("KV_CACHE_DTYPE=bf16: layer 0's cache words are the f32 cache rounded, the logits close (prompt, steps, follow-up, copied row)", async () => {
  const model = await tinyModel();
  const { gpu } = model;
  const V = model.dims.language.vocab;
  const ids = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => 3 + (seed + i * 7919) % (V - 10)).map((id) =>
      id === imageContextId ? 5 : id
    );
  const f32 = model.newRunner(1, 100);
  const bf16 = new LmRunner(gpu, model.language, model.dims.language, 1, 100, model.matmul, null, "bf16");
  assert.equal(bf16.cache.k[0].dtype, "bf16x2");
  const kvBytes = (r: LmRunner) => r.cache.bytes - r.cache.keyValid.byteLength;
  assert.equal(kvBytes(bf16), kvBytes(f32) / 2, "half the bytes");
  const next = gpu.createTensor("test.next", "i32", [1]);
  const prefill = async (runner: LmRunner, seq: number[]) => {
    const r = gpu.recorder("test.prefill");
    const free = runner.recordPrefill(r, [seq], [seq.map(() => 1)], imageContextId, null);
    r.submit();
    free();
    return await gpu.readF32(runner.logits);
  };
  const step = async (runner: LmRunner, token: number) => {
    gpu.writeTensor(next, Int32Array.of(token));
    const r = gpu.recorder("test.decode");
    runner.recordDecode(r, next);
    r.submit();
    return await gpu.readF32(runner.logits);
  };
  const argmax = (x: Float32Array) => x.reduce((b, v, i) => v > x[b] ? i : b, 0);
  const check = async (got: Float32Array, want: Float32Array, where: string) => {
    const d = compare(got, want);
    assert.ok(d.rel <= 0.15 && d.maxAbs <= 2.5, `${where}: relative error ${d.rel}, max |Δ| ${d.maxAbs}`);
    assert.ok(d.maxAbs > 0, `${where}: a bf16 cache changes the logits a little, not at all`);
    const n = f32.cache.length * model.dims.language.kvHeads * model.dims.language.headDim;
    for (
      const [kind, a, b] of [["k", f32.cache.k[0], bf16.cache.k[0]], ["v", f32.cache.v[0], bf16.cache.v[0]]]
    ) {
      const words = packBf16((await gpu.readF32(a as Tensor)).subarray(0, n));
      const stored = (await gpu.readU32(b as Tensor)).subarray(0, n / 2);
      assert.deepEqual(stored, words, `${where}: layer 0 ${kind} cache words`);
    }
  };
  const prompt = ids(80, 11);
  let want = await prefill(f32, prompt);
  await check(await prefill(bf16, prompt), want, "prompt");
  for (let s = 0; s < 4; s++) {
    const token = argmax(want);
    want = await step(f32, token);
    await check(await step(bf16, token), want, `step ${s}`);
  }
  const followUp = ids(9, 12);
  want = await prefill(f32, followUp);
  await check(await prefill(bf16, followUp), want, "follow-up");
  // The row copied out (bytes of bf16, by the cache's own element size) continues as the runner does.
  const copied = bf16.extractRow(0, [[0, bf16.cache.length]], 100);
  const token = argmax(want);
  const own = await step(bf16, token), out = await step(copied, token);
  assert.ok(compare(out, own).maxAbs <= logitTol, "the extracted bf16 row continues alike");
  await check(own, await step(f32, token), "after the follow-up");
  for (const r of [f32, bf16, copied]) r.destroy();
  next.buffer.destroy();
});

Deno.test("weight-only steps of 1–2 rows read each product's row heads ahead as set per product, the same logits", async () => {
  const model = await tinyModel();
  const { gpu } = model;
  const dims = model.dims.language;
  const seq = Array.from({ length: 9 }, (_, i) => 3 + (i * 7919) % (dims.vocab - 10)).map((id) =>
    id === imageContextId ? 5 : id
  );
  // On by default; otherwise as the bench's --row-head-prefetch sets it.
  const ahead = model.newRunner(1, 40);
  const runnerWith = (setting: string) => {
    try {
      Object.assign(rowHeadPrefetch, parseRowHeadPrefetch(setting));
      return model.newRunner(1, 40);
    } finally {
      Object.assign(rowHeadPrefetch, copyRowHeadPrefetch(defaultRowHeadPrefetch));
    }
  };
  const plain = runnerWith("off"), other = runnerWith("head=256:132,wo=off,w2=off");
  assert.equal(plain.step.rowHeads, null);
  assert.deepEqual(ahead.step.rowHeads?.setting, defaultRowHeadPrefetch);
  const next = gpu.createTensor("test.next", "i32", [1]);
  const dispatches: number[] = [];
  // The weights each row-head read binds, in order, for the step recorded with each runner.
  const headsRead = new Map<LmRunner, string[]>();
  const readsOf = (r: Recorder) =>
    r.recorded.filter((d) => d.kernel === "prefetch_row_heads").map((d) => d.bindings[0].label);
  const run = async (runner: LmRunner) => {
    const out: Float32Array[] = [];
    const r = gpu.recorder("test.prefill");
    const free = runner.recordPrefill(r, [seq], [seq.map(() => 1)], imageContextId, null);
    r.submit();
    free();
    out.push(await gpu.readF32(runner.logits));
    for (let s = 0; s < 3; s++) {
      gpu.writeTensor(next, Int32Array.of(seq[s]));
      const rs = gpu.recorder("test.decode");
      runner.recordDecode(rs, next);
      if (s === 0) {
        dispatches.push(rs.size);
        headsRead.set(runner, readsOf(rs));
      }
      rs.submit();
      out.push(await gpu.readF32(runner.logits));
    }
    return out;
  };
  const want = await run(plain), got = await run(ahead);
  got.forEach((g, i) => assert.deepEqual(g, want[i], `pass ${i}: the prefetch changes nothing computed`));
  // A dispatch before each product whose read is on: wqkv, wo, w1 and w3 (gate·up), w2 a layer, the LM head.
  const reads = (s: Record<RowHeadProduct, { bytesPerRow: number }>) => {
    const on = (p: RowHeadProduct) => s[p].bytesPerRow > 0 ? 1 : 0;
    return dims.layers * (on("wqkv") + on("wo") + 2 * on("gateUp") + on("w2")) + on("head");
  };
  const rs = gpu.recorder("test.decode.other");
  other.recordDecode(rs, next);
  dispatches.push(rs.size);
  headsRead.set(other, readsOf(rs));
  rs.submit();
  assert.deepEqual(
    dispatches.map((d) => d - dispatches[0]),
    [0, reads(defaultRowHeadPrefetch), 3 * dims.layers + 1],
    "off, the defaults, the head on with wo and w2 off",
  );
  // Each read is of the product that follows it: wqkv, wo, w1, w3, w2 a layer and the LM head, where on.
  const lw = model.language;
  assert.deepEqual(headsRead.get(plain), []);
  const labels = (ws: LinearWeights[]) => ws.map((w) => w.weight.label);
  assert.deepEqual(headsRead.get(ahead), lw.layers.flatMap((l) => labels([l.wqkv, l.wo, l.w1, l.w3, l.w2])));
  assert.deepEqual(headsRead.get(other), [
    ...lw.layers.flatMap((l) => labels([l.wqkv, l.w1, l.w3])),
    ...labels([lw.output]),
  ]);
  // Up to 2 rows (a batch of 2, or 2 tokens of one sequence); not beyond, nor for LLM.int8 steps (neither was
  // faster with it).
  for (
    const [s, on] of [
      [new LanguageScratch(gpu, dims, 2, 1), true],
      [new LanguageScratch(gpu, dims, 1, 2), true],
      [new LanguageScratch(gpu, dims, 3, 1), false],
      [new LanguageScratch(gpu, dims, 1, 3), false],
      [new LanguageScratch(gpu, dims, 1, 1, { mode: "llm-int8", threshold: 6 }), false],
    ] as const
  ) {
    assert.equal(s.rowHeads !== null, on, `${s.batch} × ${s.tokens} rows`);
    s.destroy();
  }
  for (const runner of [plain, ahead, other]) runner.destroy();
  next.buffer.destroy();
});

Deno.test("warmUp builds every pipeline a round of any row count asks for", async (t) => {
  // A server's first round of a kind should compile nothing (PERF.md v4, v54, v55): a batch's short prompt
  // takes a GEMM tiling and a prompt attention no single-sequence pass takes, its steps run the decode
  // attention with workgroup memory of their own and, past one split's keys, a combine pass whose LLM.int8
  // rows scan groups the rows by powers of two; every step ends with token choices no prompt pass records.
  // Rows 1–9: a batch up to MAX_BATCH's default, beams, rows that end or join mid-generation, and one count
  // past the matrix-vector kernels' (a step in row groups); 12 rows (groups of 8 and 4) and the first count
  // past the row groups. Not visible at this vocab: the LLM.int8 LM head's tiling of its own
  // (N ≥ 16384), which the same warm-up steps build at every row count (checked at the real shapes on the
  // H100, PERF.md v55).
  const tiny = await tinyModel();
  const gpu = tiny.gpu;
  const llmInt8 = InternVLModel.fromWeights(gpu, tiny.dims, tiny.vision, tiny.projector, tiny.language, {
    mode: "llm-int8",
    threshold: 6,
  });
  // One-row passes weight-only, the others LLM.int8: both sets of pipelines, chosen per row count.
  const batched = InternVLModel.fromWeights(gpu, tiny.dims, tiny.vision, tiny.projector, tiny.language, {
    mode: "llm-int8-batched",
    threshold: 6,
  });
  const asked = new Set<string>();
  const build = gpu.pipeline.bind(gpu);
  gpu.pipeline = (name: string, constants: Record<string, number> = {}) => {
    asked.add(name + JSON.stringify(constants));
    return build(name, constants);
  };
  try {
    const models = [["weight-only", tiny], ["llm-int8", llmInt8], ["llm-int8-batched", batched]] as const;
    for (const [mode, model] of models) {
      await t.step(mode, async () => {
        asked.clear();
        await model.warmUp(1);
        const warmed = new Set(asked);
        asked.clear();
        const sampled = { doSample: true, temperature: 0.7, topK: 5, repetitionPenalty: 1.2 };
        // And a step in row groups, and one past them (the tiled GEMMs again).
        const grouped = maxGroupedStepRows(model.matmul);
        for (const B of [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, grouped + 1]) {
          // 34 prompt ids: the steps read more keys than one split holds (32).
          const ids = Array.from(
            { length: B },
            (_, b) => Array.from({ length: 34 }, (_, i) => 1 + (b + i) % 90),
          );
          const mask = ids.map((row) => row.map(() => 1));
          const config = { ...greedy32, maxNewTokens: 2, ...(B === 3 ? sampled : {}) };
          await generate(model, { ids, mask, imageEmbeds: null }, config, { eosId: -1, imageContextId });
          assert.deepEqual(
            [...asked].filter((k) => !warmed.has(k)),
            [],
            `pipelines built after warmUp, ${B} rows`,
          );
        }
      });
    }
  } finally {
    gpu.pipeline = build;
    llmInt8.releaseScratch();
    batched.releaseScratch();
  }
});
