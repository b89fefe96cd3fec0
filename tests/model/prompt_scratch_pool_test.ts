import assert from "node:assert/strict";
import { LmRunner, maxChunkedPrompt } from "../../src/model/lm_runner.ts";
import { type Int8Matmul, type Int8MatmulSetting } from "../../src/model/int8_matmul.ts";
import { languageGemmPool } from "../../src/model/language.ts";
import { maxKeptPromptTokens, PromptScratchPool } from "../../src/model/prompt_scratch_pool.ts";
import { llmInt8Threshold } from "../../src/ops/llm_int8.ts";
import { manifest, tinyModel } from "./tiny_fixture.ts";

// Follow-up rounds take their scratch and bind groups from the model's PromptScratchPool: each count of up to
// 8 tokens a class (decode-sized chunks), every longer count up to 64 the front of one 64-token scratch.
// What must hold: the logits of fresh scratch, bit for bit; the dispatches binding no runner buffer take
// their bind groups from the caches; two passes recorded before either is submitted keep apart.
const imageContextId = manifest.tokenizer.special_ids["<IMG_CONTEXT>"];

Deno.test("kept prompt scratch: follow-up rounds of 1–64 tokens give fresh scratch's logits bit for bit, with the bind groups of earlier rounds", async (t) => {
  const model = await tinyModel();
  const { gpu } = model;
  const dims = model.dims.language;
  const V = dims.vocab;
  const ids = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => 3 + (seed * 31 + i * 7919) % (V - 10)).map((id) =>
      id === imageContextId ? 5 : id
    );
  // Bind groups made while recording (createBindGroup spied on).
  let made = 0;
  const createBindGroup = gpu.device.createBindGroup.bind(gpu.device);
  gpu.device.createBindGroup = (d: GPUBindGroupDescriptor) => {
    made++;
    return createBindGroup(d);
  };
  // LLM.int8: 9, 64 and 17 tokens through one kept scratch's front, 1 its own. Weight-only (8-token chunks up
  // to maxChunkedPrompt, ~0.2 s each on llvmpipe): 9 as chunks of 8 and 1, 17 through the kept scratch's front.
  const roundsOf = (mode: Int8Matmul) =>
    (mode === "weight-only" ? [9, 1, 17] : [9, maxKeptPromptTokens, 1, 17]).map((n, i) => ids(n, 2 + i));
  // Each runner starts after 40 positions of zero keys (a first round not computed, the same for all):
  // past one split of the decode attention (32 keys), as in a conversation, so that every chunk's attention
  // has its combine pass and a class's dispatches come in the same order each round.
  const kept0 = 40, capacity = kept0 + 9 + 64 + 1 + 17;
  const afterFirstRound = (runner: LmRunner) => {
    runner.cache.length = kept0;
    runner.truncate(kept0);
    return runner;
  };
  const record = (runner: LmRunner, seq: number[]) => {
    const r = gpu.recorder("test.prompt");
    const free = runner.recordPrefill(r, [seq], [seq.map(() => 1)], imageContextId, null);
    r.submit();
    free();
  };
  try {
    for (const mode of ["weight-only", "llm-int8"] as Int8Matmul[]) {
      await t.step(mode, async () => {
        const matmul: Int8MatmulSetting = { mode, threshold: llmInt8Threshold };
        const gemm = languageGemmPool(gpu, dims);
        const pool = new PromptScratchPool(gpu, dims, matmul, gemm);
        const runner = (kept: boolean) =>
          afterFirstRound(
            new LmRunner(gpu, model.language, dims, 1, capacity, matmul, gemm, "f32", kept ? pool : null),
          );
        const rounds = roundsOf(mode);
        const fresh = runner(false), kept = runner(true), other = runner(true), again = runner(false);
        try {
          for (const [i, seq] of rounds.entries()) {
            record(fresh, seq);
            const want = await gpu.readF32(fresh.logits);
            record(kept, seq);
            assert.deepEqual(await gpu.readF32(kept.logits), want, `round ${i}, ${seq.length} tokens`);
          }
          // Another conversation's 17-token round: only what binds its runner's own buffers (the KV cache in
          // each layer's cache write and attention, the logits) builds a bind group.
          const seq = rounds[rounds.length - 1];
          made = 0;
          record(other, seq);
          const madeKept = made;
          made = 0;
          record(again, seq);
          const madeFresh = made;
          // One pass (past maxChunkedPrompt in weight-only too), building the runner's bind groups once.
          const runnerBound = 2 * dims.layers + 1;
          assert.ok(
            madeKept <= runnerBound && madeFresh >= 3 * runnerBound,
            `bind groups made: ${madeKept} with kept scratch, ${madeFresh} with fresh; ${runnerBound} bind the runner's`,
          );
          assert.deepEqual(await gpu.readF32(other.logits), await gpu.readF32(again.logits));
          // Made once a class (weight-only: 8, 1, 64; LLM.int8: 64, 1), reused by every later round of it.
          assert.deepEqual(
            [pool.made, pool.reused],
            mode === "weight-only" ? [3, 2] : [2, 3],
            `kept scratch made ${pool.made}×, reused ${pool.reused}×`,
          );
          // One scratch set a class: a chunk submitted at once gave its set back to the next of its size.
          // Weight-only runs 9–16 tokens as chunks of 8 and the rest; longer ones, and LLM.int8, as one pass.
          const classes = (n: number) =>
            n <= 8
              ? [n]
              : mode === "weight-only" && n <= maxChunkedPrompt
              ? [8, ...(n % 8 ? [n % 8] : [])]
              : [maxKeptPromptTokens];
          assert.equal(pool.size, new Set(rounds.flatMap((s) => classes(s.length))).size);
        } finally {
          for (const r of [fresh, kept, other, again]) r.destroy();
          pool.destroy();
          gemm.destroy();
        }
      });
    }
  } finally {
    gpu.device.createBindGroup = createBindGroup;
  }
});

Deno.test("kept prompt scratch: two passes recorded before either is submitted each keep their own", async () => {
  const model = await tinyModel();
  const { gpu } = model;
  const dims = model.dims.language;
  const seqs = [[11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23], [
    40,
    41,
    42,
    43,
    44,
    45,
    46,
    47,
    48,
    49,
    50,
  ]];
  for (const mode of ["weight-only", "llm-int8"] as Int8Matmul[]) {
    const matmul: Int8MatmulSetting = { mode, threshold: llmInt8Threshold };
    const pool = new PromptScratchPool(gpu, dims, matmul, null);
    const runners = seqs.map(() => new LmRunner(gpu, model.language, dims, 1, 40, matmul, null, "f32", pool));
    const fresh = seqs.map(() => new LmRunner(gpu, model.language, dims, 1, 40, matmul));
    try {
      // Both recorded (their inputs written at record time), then both submitted.
      const held = runners.map((runner, i) => {
        const r = gpu.recorder("test.held");
        const submit = r.holdSubmits();
        const free = runner.recordPrefill(r, [seqs[i]], [seqs[i].map(() => 1)], imageContextId, null);
        r.submit();
        return { submit, free };
      });
      for (const h of held) h.submit();
      for (const h of held) h.free();
      for (const [i, runner] of fresh.entries()) {
        const r = gpu.recorder("test.fresh");
        const free = runner.recordPrefill(r, [seqs[i]], [seqs[i].map(() => 1)], imageContextId, null);
        r.submit();
        free();
        assert.deepEqual(
          await gpu.readF32(runners[i].logits),
          await gpu.readF32(runner.logits),
          `${mode}: pass ${i}`,
        );
      }
    } finally {
      for (const r of [...runners, ...fresh]) r.destroy();
      pool.destroy();
    }
  }
});

Deno.test("kept prompt scratch: a pass that fails while recording gives its scratch back", async () => {
  const model = await tinyModel();
  const { gpu } = model;
  const dims = model.dims.language;
  const pool = new PromptScratchPool(gpu, dims, model.matmul, null);
  const runner = new LmRunner(gpu, model.language, dims, 1, 12, model.matmul, null, "f32", pool);
  try {
    const seq = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
    const record = (ids: number[]) => {
      const r = gpu.recorder("test.prompt");
      const free = runner.recordPrefill(r, [ids], [ids.map(() => 1)], imageContextId, null);
      r.submit();
      free();
    };
    record(seq.slice(0, 8));
    assert.equal(pool.size, 1);
    // 8 kept + 8 new: past the 12 positions, thrown as the chunk records (after taking its scratch).
    assert.throws(() => record(seq.slice(0, 8)), /KV cache holds 12 positions/);
    runner.truncate(0);
    record(seq.slice(0, 8));
    assert.deepEqual([pool.size, pool.made, pool.reused], [1, 1, 2], "the one scratch set, taken again");
  } finally {
    runner.destroy();
    pool.destroy();
  }
});
