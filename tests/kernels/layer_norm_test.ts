import { layerNorm } from "../../src/ops/layer_norm.ts";
import { layerNormRef } from "../../src/ref/layer_norm.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { normThreadCounts } from "../../src/ops/norm_threads.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

const shapes = [[1, 1], [1, 7], [3, 255], [5, 257], [17, 1000], [2, 12800], [300, 33]];

Deno.test("layerNorm matches the CPU reference on rows with a large mean", async (t) => {
  const gpu = await testGpu();
  for (const [T, D] of shapes) {
    for (const threads of normThreadCounts) {
      await t.step(`T=${T} D=${D} threads=${threads}`, async () => {
        const seed = T * 17 + D * 3;
        // Each row sits on an offset of up to ±20 with unit spread: a one-pass variance would cancel.
        const x = randomF32(T * D, seed, -1, 1);
        const offsets = randomF32(T, seed + 1, -20, 20);
        for (let i = 0; i < x.length; i++) x[i] += offsets[Math.floor(i / D)];
        const w = randomF32(D, seed + 2, 0.5, 1.5);
        const b = randomF32(D, seed + 3);
        const gx = gpu.uploadTensor("x", "f32", [T, D], x);
        const gw = gpu.uploadTensor("w", "f32", [D], w);
        const gb = gpu.uploadTensor("b", "f32", [D], b);
        const out = gpu.createTensor("out", "f32", [T, D]);
        const r = gpu.recorder("test");
        layerNorm(r, gx, gw, gb, out, 1e-5, threads);
        r.submit();
        assertNormalisedError(
          await gpu.readF32(out),
          layerNormRef(x, w, b, D, 1e-5),
          tolerance.reduction.nerr,
        );
      });
    }
  }
});
