import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { gateUpSilu } from "../../src/ops/gate_up_silu.ts";
import { uploadLinear } from "../../src/ops/linear.ts";
import { gateUpSiluRef } from "../../src/ref/gate_up_silu.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

async function checkGateUpSilu(gpu: Gpu, T: number, K: number, I: number, maxGroupsPerRow?: number) {
  const seed = T * 7919 + K * 104729 + I * 31;
  const h1 = hostInt8(I, K, false, seed), h3 = hostInt8(I, K, false, seed + 10);
  // Hidden states of different scale per token: each token's norm factor must follow its own row.
  const xs = randomF32(T * K, seed + 3, -4, 4);
  for (let i = 0; i < xs.length; i++) xs[i] *= 1 + Math.floor(i / K) % 5;
  const g = randomF32(K, seed + 4, 0.5, 1.5);
  const eps = T % 2 ? 1e-6 : 1e-5;
  const w1 = uploadLinear(gpu, `w1_${I}x${K}`, h1), w3 = uploadLinear(gpu, `w3_${I}x${K}`, h3);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const gw = gpu.uploadTensor("ffn_norm", "f32", [K], g);
  const out = gpu.createTensor("act", "f32", [T, I]);
  const r = gpu.recorder("test");
  gateUpSilu(r, x, gw, eps, w1, w3, out, { maxGroupsPerRow });
  r.submit();
  const actual = await gpu.readF32(out);
  try {
    assertNormalisedError(actual, gateUpSiluRef(xs, T, g, eps, h1, h3), tolerance.matmul.nerr);
  } finally {
    for (const t of [x, gw, out, w1.weight, w3.weight, w1.kind === "int8" ? w1.scale : null]) {
      t?.buffer.destroy();
    }
    if (w3.kind === "int8") w3.scale.buffer.destroy();
  }
}

Deno.test("gateUpSilu matches rmsNorm → linear(w1), linear(w3) → siluMul on odd shapes", async (t) => {
  const gpu = await testGpu();
  for (const T of [1, 3, 8]) {
    for (const K of [64, 260, 1000]) {
      for (const I of [1, 67, 300]) {
        await t.step(`T=${T} K=${K} I=${I}`, () => checkGateUpSilu(gpu, T, K, I));
      }
    }
  }
  // The model's tilings at 6 and 7 tokens (8 lanes a row) and at 5 (16-byte loads), K a multiple of 16.
  for (const T of [5, 6, 7]) {
    await t.step(`T=${T} K=1008 I=301`, () => checkGateUpSilu(gpu, T, 1008, 301));
  }
});

Deno.test("gateUpSilu folds a long grid into 2-D and leaves no row unwritten", async () => {
  const gpu = await testGpu();
  // 70000 rows = 8750 workgroups, folded at 1000 per grid row: 9 rows, the last one overhanging.
  await checkGateUpSilu(gpu, 3, 64, 70000, 1000);
  await checkGateUpSilu(gpu, 1, 260, 70000);
});

Deno.test("gateUpSilu refuses what the kernel cannot do", async () => {
  const gpu = await testGpu();
  const w1 = uploadLinear(gpu, "w1", hostInt8(4, 32, false, 1));
  const w3 = uploadLinear(gpu, "w3", hostInt8(4, 32, false, 2));
  const wb = uploadLinear(gpu, "wb", { ...hostInt8(4, 32, false, 3), bias: randomF32(4, 4) });
  const g = gpu.createTensor("g", "f32", [32]);
  const x9 = gpu.createTensor("x9", "f32", [9, 32]);
  const x = gpu.createTensor("x", "f32", [2, 32]);
  const out = gpu.createTensor("out", "f32", [2, 4]);
  const r = gpu.recorder("t");
  assert.throws(
    () => gateUpSilu(r, x9, g, 1e-6, w1, w3, out),
    /needs 1 ≤ T ≤ 8 and K % 4 == 0 \(T=9, K=32\)/,
  );
  assert.throws(() => gateUpSilu(r, x, g, 1e-6, w1, wb, out), /must have no bias/);
  const s1 = uploadLinear(gpu, "s1", hostInt8(4, 4, false, 5)),
    s3 = uploadLinear(gpu, "s3", hostInt8(4, 4, false, 6));
  const h = gpu.createTensor("h", "f32", [2, 4]);
  assert.throws(
    () => gateUpSilu(r, h, gpu.createTensor("g4", "f32", [4]), 1e-6, s1, s3, h),
    /gateUpSilu s1.weight: out \(h\) must not alias x or normWeight/,
  );
});
