import assert from "node:assert/strict";
import { rmsNorm } from "../../src/ops/rms_norm.ts";
import { rmsNormRef } from "../../src/ref/rms_norm.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { normThreadCounts } from "../../src/ops/norm_threads.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

const shapes = [[1, 1], [1, 7], [3, 255], [5, 257], [17, 1000], [2, 6144], [2, 12800], [300, 33]];

Deno.test("rmsNorm matches the CPU reference", async (t) => {
  const gpu = await testGpu();
  for (const [T, D] of shapes) {
    for (const threads of normThreadCounts) {
      await t.step(`T=${T} D=${D} threads=${threads}`, async () => {
        const seed = T * 131 + D;
        // Rows of different scale, as hidden states are: the statistic must follow each row.
        const x = randomF32(T * D, seed, -4, 4);
        for (let i = 0; i < x.length; i++) x[i] *= 1 + Math.floor(i / D) % 5;
        const w = randomF32(D, seed + 1, 0.5, 1.5);
        const eps = T % 2 ? 1e-6 : 1e-5;
        const gx = gpu.uploadTensor("x", "f32", [T, D], x);
        const gw = gpu.uploadTensor("w", "f32", [D], w);
        const out = gpu.createTensor("out", "f32", [T, D]);
        const r = gpu.recorder("test");
        rmsNorm(r, gx, gw, out, eps, threads);
        r.submit();
        assertNormalisedError(await gpu.readF32(out), rmsNormRef(x, w, D, eps), tolerance.reduction.nerr);
      });
    }
  }
});

Deno.test("rmsNorm's eps matters for rows of tiny values", async () => {
  const gpu = await testGpu();
  const T = 2, D = 50;
  const x = randomF32(T * D, 9, -1e-3, 1e-3);
  const w = randomF32(D, 10, 0.5, 1.5);
  const gx = gpu.uploadTensor("x", "f32", [T, D], x);
  const gw = gpu.uploadTensor("w", "f32", [D], w);
  const out = gpu.createTensor("out", "f32", [T, D]);
  const r = gpu.recorder("test");
  rmsNorm(r, gx, gw, out, 1e-6);
  r.submit();
  assertNormalisedError(await gpu.readF32(out), rmsNormRef(x, w, D, 1e-6), tolerance.reduction.nerr);
});

Deno.test("rmsNorm refuses to write over its input", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("h", "f32", [2, 4]);
  const w = gpu.createTensor("w", "f32", [4]);
  assert.throws(() => rmsNorm(gpu.recorder("t"), x, w, x, 1e-6), /rmsNorm: out must not alias x \(h\)/);
});
