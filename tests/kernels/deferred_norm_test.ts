import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import {
  createDeferredNormTensor,
  deferredNormGateUp,
  deferredNormLinear,
} from "../../src/ops/deferred_norm.ts";
import { deferredNormUsedParts, deferredNormWidth } from "../../src/ops/deferred_norm_layout.ts";
import { linear, uploadLinear } from "../../src/ops/linear.ts";
import { deferredNormRef } from "../../src/ref/deferred_norm.ts";
import { gateUpSiluRef } from "../../src/ref/gate_up_silu.ts";
import { linearRef } from "../../src/ref/linear.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { rmsNormLinearRef } from "../../src/ref/rms_norm_linear.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

/** Hidden states whose scale differs per token, so each token's norm must follow its own row. */
function hiddenStates(T: number, D: number, seed: number): Float32Array {
  const h = randomF32(T * D, seed, -4, 4);
  for (let i = 0; i < h.length; i++) h[i] *= 1 + Math.floor(i / D) % 5;
  return h;
}

/** Producer: linear_matvec (accumulate, NORM_NEXT) → h' = h + x·Wᵀ and the deferred norm of h'. */
async function checkProducer(gpu: Gpu, T: number, K: number, N: number) {
  const seed = T * 131 + K * 7 + N;
  const host = hostInt8(N, K, N % 2 === 1, seed);
  const xs = randomF32(T * K, seed + 3);
  const h0 = hiddenStates(T, N, seed + 4);
  const g = randomF32(N, seed + 5, 0.5, 1.5);
  const w = uploadLinear(gpu, `w${N}x${K}`, host);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const h = gpu.uploadTensor("h", "f32", [T, N], h0);
  const gw = gpu.uploadTensor("g", "f32", [N], g);
  const xn = createDeferredNormTensor(gpu, "xn", T, N);
  // Stale values in the deferred tensor must be overwritten, not added to.
  gpu.writeTensor(xn, randomF32(T * deferredNormWidth(N), seed + 6, 5, 9));
  const r = gpu.recorder("test");
  linear(r, x, w, h, { accumulate: true, normNext: { weight: gw, out: xn } });
  r.submit();
  try {
    const hNew = await gpu.readF32(h);
    const y = linearRef(xs, T, host);
    assertNormalisedError(hNew, h0.map((v, i) => v + y[i]), tolerance.matmul.nerr);
    // The deferred norm of the h' the kernel wrote: x·g is one multiply, the partial sums 8-term sums.
    const expected = deferredNormRef(hNew, T, N, g);
    const actual = await gpu.readF32(xn);
    const width = deferredNormWidth(N), used = deferredNormUsedParts(N);
    const pick = (a: Float32Array, from: number, to: number) =>
      Array.from({ length: T }, (_, t) => Array.from(a.subarray(t * width + from, t * width + to))).flat();
    assertClose(pick(actual, 0, N), pick(expected, 0, N), 0, 1e-7);
    assertClose(pick(actual, N, N + used), pick(expected, N, N + used), 0, 1e-5);
  } finally {
    for (const t of [x, h, gw, xn, w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
  }
}

/** Consumer: deferred_norm_matvec (plain or gate/up) against rmsNorm → linear on the CPU. */
async function checkConsumer(gpu: Gpu, T: number, K: number, N: number, gate: boolean) {
  const seed = T * 977 + K * 13 + N * 3 + (gate ? 1 : 0);
  const h = hiddenStates(T, K, seed);
  const g = randomF32(K, seed + 1, 0.5, 1.5);
  const eps = T % 2 ? 1e-6 : 1e-5;
  const host1 = hostInt8(N, K, !gate && N % 2 === 0, seed + 2);
  const host3 = hostInt8(N, K, false, seed + 3);
  const w1 = uploadLinear(gpu, "w1", host1);
  const w3 = uploadLinear(gpu, "w3", host3);
  const xn = gpu.uploadTensor("xn", "f32", [T, deferredNormWidth(K)], deferredNormRef(h, T, K, g));
  const out = gpu.createTensor("out", "f32", [T, N]);
  const r = gpu.recorder("test");
  if (gate) deferredNormGateUp(r, xn, eps, w1, w3, out);
  else deferredNormLinear(r, xn, eps, w1, out);
  r.submit();
  try {
    const expected = gate ? gateUpSiluRef(h, T, g, eps, host1, host3) : rmsNormLinearRef(h, T, g, eps, host1);
    assertNormalisedError(await gpu.readF32(out), expected, tolerance.matmul.nerr);
  } finally {
    for (const w of [w1, w3]) {
      for (const t of [w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
    }
    xn.buffer.destroy();
    out.buffer.destroy();
  }
}

Deno.test("linear with normNext writes h + x·Wᵀ and the deferred norm of it", async (t) => {
  const gpu = await testGpu();
  for (const [K, N] of [[68, 1], [260, 67], [1004, 301], [36, 1029]]) {
    await t.step(`T=1 K=${K} N=${N}`, () => checkProducer(gpu, 1, K, N));
  }
});

for (const gate of [false, true]) {
  Deno.test(`deferred_norm_matvec (${gate ? "gate/up" : "linear"}) matches rmsNorm → ${gate ? "silu·up" : "linear"}`, async (t) => {
    const gpu = await testGpu();
    for (const T of [1, 3, 8]) {
      for (const [K, N] of [[68, 1], [260, 67], [1004, 301], [36, 1029]]) {
        await t.step(`T=${T} K=${K} N=${N}`, () => checkConsumer(gpu, T, K, N, gate));
      }
    }
  });
}

Deno.test("producer → consumer chain equals rmsNorm(h + x·Wᵀ) → linear", async () => {
  const gpu = await testGpu();
  const D = 196, K = 132, N = 45, eps = 1e-6;
  const hostWo = hostInt8(D, K, false, 41);
  const hostQkv = hostInt8(N, D, false, 42);
  const xs = randomF32(K, 43), h0 = hiddenStates(1, D, 44), g = randomF32(D, 45, 0.5, 1.5);
  const wo = uploadLinear(gpu, "wo", hostWo), wqkv = uploadLinear(gpu, "wqkv", hostQkv);
  const x = gpu.uploadTensor("x", "f32", [1, K], xs);
  const h = gpu.uploadTensor("h", "f32", [1, D], h0);
  const gw = gpu.uploadTensor("g", "f32", [D], g);
  const xn = createDeferredNormTensor(gpu, "xn", 1, D);
  const out = gpu.createTensor("out", "f32", [1, N]);
  const r = gpu.recorder("test");
  linear(r, x, wo, h, { accumulate: true, normNext: { weight: gw, out: xn } });
  deferredNormLinear(r, xn, eps, wqkv, out);
  r.submit();
  const y = linearRef(xs, 1, hostWo);
  const hNew = h0.map((v, i) => v + y[i]);
  assertNormalisedError(
    await gpu.readF32(out),
    rmsNormLinearRef(hNew, 1, g, eps, hostQkv),
    tolerance.matmul.nerr,
  );
});

Deno.test("deferred-norm kernels refuse what they cannot do", async () => {
  const gpu = await testGpu();
  const w = uploadLinear(gpu, "w", hostInt8(4, 32, false, 1));
  const wb = uploadLinear(gpu, "wb", hostInt8(4, 32, true, 2));
  const x2 = gpu.createTensor("x2", "f32", [2, 32]);
  const h2 = gpu.createTensor("h2", "f32", [2, 4]);
  const g = gpu.createTensor("g", "f32", [4]);
  const xn = createDeferredNormTensor(gpu, "xn", 2, 4);
  const r = gpu.recorder("t");
  // T = 2 runs matvec_i8, which has no NORM_NEXT epilogue.
  assert.throws(
    () => linear(r, x2, w, h2, { normNext: { weight: g, out: xn } }),
    /normNext needs int8 weights at T = 1/,
  );
  const xnWrong = gpu.createTensor("xn_wrong", "f32", [1, 32]);
  const out = gpu.createTensor("out", "f32", [1, 4]);
  assert.throws(() => deferredNormLinear(r, xnWrong, 1e-6, w, out), /xn/);
  assert.throws(
    () => deferredNormGateUp(r, createDeferredNormTensor(gpu, "ok", 1, 32), 1e-6, wb, w, out),
    /no bias/,
  );
  const x9 = createDeferredNormTensor(gpu, "x9", 9, 32);
  assert.throws(() => deferredNormLinear(r, x9, 1e-6, w, gpu.createTensor("o9", "f32", [9, 4])), /1 ≤ T ≤ 8/);
});
