import assert from "node:assert/strict";
import {
  attentionFull,
  type AttentionFullConfig,
  attentionFullConfigs,
  defaultAttentionFullConfig,
} from "../../src/ops/attention_full.ts";
import { attentionFullRows } from "../../src/ops/attention_full_rows.ts";
import { queryRowsHold } from "../../src/ops/query_rows.ts";
import { attentionFullRef } from "../../src/ref/attention_full.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("attentionFull and the CPU adapters' attentionFullRows match the CPU reference (partial tiles and rows)", async (t) => {
  const gpu = await testGpu();
  // [B, T, H, Dh]: T=1, T below one key tile, T=1025 (the fixture's tile: 2 heads of 32) and Dh up to the real
  // 128. The rows form (Dh ≤ 64) too: T = 1 and 7 leave most of an invocation's 8 rows past T, T = 65 and
  // 130 start a workgroup of 64 rows with 1 and 2 rows.
  for (
    const [B, T, H, Dh] of [
      [1, 1, 1, 4],
      [2, 7, 3, 20],
      [1, 33, 2, 128],
      [3, 50, 1, 64],
      [1, 65, 2, 36],
      [2, 130, 3, 64],
      [1, 1025, 2, 32],
    ]
  ) {
    await t.step(`B=${B} T=${T} H=${H} Dh=${Dh}`, async () => {
      const n = B * T * H * Dh, seed = B * 1000 + T * 10 + H + Dh;
      // Scores of a few units, like trained ViT attention, so the softmax is neither flat nor one-hot.
      const q = randomF32(n, seed, -2, 2), k = randomF32(n, seed + 1, -2, 2), v = randomF32(n, seed + 2);
      const shape = [B * T, H * Dh];
      const [gq, gk, gv] = [q, k, v].map((x, i) => gpu.uploadTensor("qkv"[i], "f32", shape, x));
      const want = attentionFullRef(q, k, v, B, T, H, Dh);
      const attentions = queryRowsHold(Dh) ? [attentionFull, attentionFullRows] : [attentionFull];
      for (const attention of attentions) {
        const out = gpu.createTensor("out", "f32", shape);
        const r = gpu.recorder("test");
        attention(r, gq, gk, gv, out, { batch: B, tokens: T, numHeads: H, headDim: Dh });
        r.submit();
        assertNormalisedError(await gpu.readF32(out), want, tolerance.attention.nerr, attention.name);
        out.buffer.destroy();
      }
      [gq, gk, gv].forEach((x) => x.buffer.destroy());
    });
  }
});

/** Runs attentionFull on fresh seeded inputs and compares it with the CPU reference. */
async function checkAgainstRef(B: number, T: number, H: number, Dh: number, config: AttentionFullConfig) {
  const gpu = await testGpu();
  const n = B * T * H * Dh, seed = 7919 + B * 1000 + T * 10 + H + Dh;
  const q = randomF32(n, seed, -2, 2), k = randomF32(n, seed + 1, -2, 2), v = randomF32(n, seed + 2);
  const shape = [B * T, H * Dh];
  const [gq, gk, gv] = [q, k, v].map((x, i) => gpu.uploadTensor("qkv"[i], "f32", shape, x));
  const out = gpu.createTensor("out", "f32", shape);
  const r = gpu.recorder("test");
  attentionFull(r, gq, gk, gv, out, { batch: B, tokens: T, numHeads: H, headDim: Dh }, config);
  r.submit();
  assertNormalisedError(
    await gpu.readF32(out),
    attentionFullRef(q, k, v, B, T, H, Dh),
    tolerance.attention.nerr,
  );
  [gq, gk, gv, out].forEach((t) => t.buffer.destroy());
}

Deno.test("attentionFull matches the CPU reference with every tiling at sizes that divide no block", async (t) => {
  // T = 37 and 130 leave partial query (64, 32 rows) and key (32) blocks; Dh 64 and 128 take 2 and 4
  // stages of 8 vec4 columns.
  for (const config of attentionFullConfigs) {
    for (const [B, T, H, Dh] of [[2, 37, 3, 64], [2, 130, 3, 128]]) {
      await t.step(
        `BQ=${config.queryTile} prefetch=${config.prefetch} B=${B} T=${T} H=${H} Dh=${Dh}`,
        () => checkAgainstRef(B, T, H, Dh, config),
      );
    }
  }
  // T = 65: a last query block of one row; Dh = 36: a second stage with one real column of eight.
  for (const [B, T, H, Dh] of [[1, 65, 2, 128], [2, 97, 1, 36]]) {
    await t.step(
      `default tiling B=${B} T=${T} H=${H} Dh=${Dh}`,
      () => checkAgainstRef(B, T, H, Dh, defaultAttentionFullConfig),
    );
  }
});

Deno.test("attentionFull and attentionFullRows reject head dims they cannot hold", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("x", "f32", [2, 6]);
  assert.throws(
    () => attentionFull(gpu.recorder("t"), x, x, x, x, { batch: 1, tokens: 2, numHeads: 1, headDim: 6 }),
    /head dim 6 is not supported/,
  );
  const y = gpu.createTensor("y", "f32", [2, 68]);
  assert.throws(
    () => attentionFullRows(gpu.recorder("t"), y, y, y, y, { batch: 1, tokens: 2, numHeads: 1, headDim: 68 }),
    /head dim 68 is not supported/,
  );
});
