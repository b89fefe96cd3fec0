import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { uploadLinear } from "../../src/ops/linear.ts";
import { rmsNormLinear } from "../../src/ops/rms_norm_linear.ts";
import { rmsNormLinearRef } from "../../src/ref/rms_norm_linear.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

async function checkRmsNormLinear(
  gpu: Gpu,
  T: number,
  K: number,
  N: number,
  withBias: boolean,
  opts: { rowsPerWarp?: 1 | 2; maxGroupsPerRow?: number } = {},
) {
  const seed = T * 7919 + K * 104729 + N * 31 + (withBias ? 1 : 0);
  const host = hostInt8(N, K, withBias, seed);
  // Hidden states of different scale per token: each token's norm factor must follow its own row.
  const xs = randomF32(T * K, seed + 3, -4, 4);
  for (let i = 0; i < xs.length; i++) xs[i] *= 1 + Math.floor(i / K) % 5;
  const g = randomF32(K, seed + 4, 0.5, 1.5);
  const eps = T % 2 ? 1e-6 : 1e-5;
  const w = uploadLinear(gpu, `w${N}x${K}`, host);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const gw = gpu.uploadTensor("norm", "f32", [K], g);
  const out = gpu.createTensor("out", "f32", [T, N]);
  const r = gpu.recorder("test");
  rmsNormLinear(r, x, gw, eps, w, out, opts);
  r.submit();
  const actual = await gpu.readF32(out);
  try {
    assertNormalisedError(actual, rmsNormLinearRef(xs, T, g, eps, host), tolerance.matmul.nerr);
  } finally {
    for (const t of [x, gw, out, w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
  }
}

for (const rowsPerWarp of [undefined, 2, 1] as const) {
  Deno.test(`rmsNormLinear (rowsPerWarp ${rowsPerWarp ?? "unset: matvec_i8"}) matches rmsNorm → linear on odd shapes`, async (t) => {
    const gpu = await testGpu();
    for (const T of [1, 3, 8]) {
      for (const K of [64, 260, 1000]) {
        for (const N of [1, 67, 300]) {
          const withBias = (T + K + N + (rowsPerWarp ?? 0)) % 2 === 0;
          await t.step(
            `T=${T} K=${K} N=${N} bias=${withBias}`,
            () => checkRmsNormLinear(gpu, T, K, N, withBias, { rowsPerWarp }),
          );
        }
      }
    }
  });
}

Deno.test("rmsNormLinear folds a long grid into 2-D and leaves no row unwritten", async () => {
  const gpu = await testGpu();
  // 70000 rows = 4375 workgroups of 16 rows, folded at 1000 per grid row: 5 rows, the last overhanging.
  await checkRmsNormLinear(gpu, 3, 64, 70000, true, { maxGroupsPerRow: 1000, rowsPerWarp: 2 });
  // matvec_i8 (T = 3 at 70000 rows: 8 rows per thread, 64 per workgroup; folded at 300 per grid row)
  await checkRmsNormLinear(gpu, 3, 64, 70000, true, { maxGroupsPerRow: 300 });
  await checkRmsNormLinear(gpu, 1, 260, 70000, false, { rowsPerWarp: 1 });
});

Deno.test("rmsNormLinear refuses what the kernel cannot do", async () => {
  const gpu = await testGpu();
  const w = uploadLinear(gpu, "w", hostInt8(4, 32, false, 1));
  const wf = uploadLinear(gpu, "wf", {
    ...hostInt8(4, 32, false, 2),
    kind: "float",
    weight: randomF32(128, 3),
  });
  const g = gpu.createTensor("g", "f32", [32]);
  const x = gpu.createTensor("x", "f32", [2, 32]);
  const out = gpu.createTensor("out", "f32", [2, 4]);
  const r = gpu.recorder("t");
  assert.throws(
    () =>
      rmsNormLinear(
        r,
        gpu.createTensor("x9", "f32", [9, 32]),
        g,
        1e-6,
        w,
        gpu.createTensor("o9", "f32", [9, 4]),
      ),
    /needs 1 ≤ T ≤ 8 and K % 4 == 0 \(T=9, K=32\)/,
  );
  assert.throws(() => rmsNormLinear(r, x, g, 1e-6, wf, out), /weights must be int8 \(got f32\)/);
  const sq = uploadLinear(gpu, "sq", hostInt8(4, 4, false, 4));
  const h = gpu.createTensor("h", "f32", [2, 4]);
  assert.throws(
    () => rmsNormLinear(r, h, gpu.createTensor("g4", "f32", [4]), 1e-6, sq, h),
    /rmsNormLinear sq.weight: out \(h\) must not alias x or normWeight/,
  );
});
