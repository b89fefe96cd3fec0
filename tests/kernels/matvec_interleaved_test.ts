import { interleaveInt8Rows, matvecInterleaved } from "../../src/ops/matvec_interleaved.ts";
import { linearRef } from "../../src/ref/linear.ts";
import { randomF32, randomI8 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("matvecInterleaved (experiment) matches the linear reference on odd shapes", async (t) => {
  const gpu = await testGpu();
  // [T, N, K, rows per lane, accumulate]: N not a multiple of 32 or 64, K/16 groups fewer than, equal to and
  // more than the 8 warps, with an odd tail for the two-groups-per-iteration loop.
  const cases: [number, number, number, 1 | 2, boolean][] = [
    [1, 77, 48, 2, false],
    [3, 301, 272, 1, true],
    [8, 45, 128, 2, true],
    [5, 130, 400, 2, false],
  ];
  for (const [T, N, K, R, accumulate] of cases) {
    await t.step(`T=${T} N=${N} K=${K} R=${R} accumulate=${accumulate}`, async () => {
      const seed = T * 7 + N * 13 + K;
      const w = randomI8(N * K, seed);
      const scb = randomF32(N, seed + 1, 0.02, 0.2);
      const xs = randomF32(T * K, seed + 2, -3, 3);
      const prior = randomF32(T * N, seed + 3);
      const scale = scb.map((s) => s / 127);
      const gw = gpu.uploadTensor("w", "u32", [N * K / 4], interleaveInt8Rows(w, N, K));
      const gs = gpu.uploadTensor("scale", "f32", [N], scale);
      const gx = gpu.uploadTensor("x", "f32", [T, K], xs);
      const out = gpu.uploadTensor("out", "f32", [T, N], prior);
      const r = gpu.recorder("test");
      matvecInterleaved(r, gx, gw, gs, out, { accumulate, rowsPerLane: R });
      r.submit();
      const got = await gpu.readF32(out);
      const want = linearRef(xs, T, {
        kind: "int8",
        weight: w,
        scb,
        bias: null,
        outFeatures: N,
        inFeatures: K,
      });
      if (accumulate) { for (let i = 0; i < want.length; i++) want[i] += prior[i]; }
      assertNormalisedError(got, want, tolerance.matmul.nerr);
      for (const x of [gw, gs, gx, out]) x.buffer.destroy();
    });
  }
});
