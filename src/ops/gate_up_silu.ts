import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { type LinearWeights, maxMatvecTokens } from "./linear.ts";
import { recordMatvecI8 } from "./matvec_i8.ts";

/**
 * The InternLM2 MLP front half for decode, ffn RMSNorm fused, in one dispatch:
 * out = silu(rmsNorm(x)·W1ᵀ) · (rmsNorm(x)·W3ᵀ), i.e. rmsNorm → linear(w1), linear(w3) → siluMul.
 * x: [T, K] f32 (T ≤ 8, K % 4 == 0); normWeight: [K] f32; w1, w3: int8 [I, K] without bias
 * (InternLM2MLP's Linears have none); out: [T, I] f32, not x.
 * `maxGroupsPerRow` (tests only) folds the grid into 2-D sooner than the 65535 limit requires.
 */
export function gateUpSilu(
  r: Recorder,
  x: Tensor,
  normWeight: Tensor,
  eps: number,
  w1: LinearWeights,
  w3: LinearWeights,
  out: Tensor,
  opts: { maxGroupsPerRow?: number } = {},
): void {
  const [T, K] = x.shape;
  const I = w1.weight.shape[0];
  const what = `gateUpSilu ${w1.weight.label}`;
  if (w1.kind !== "int8" || w3.kind !== "int8") {
    throw new Error(`${what}: w1 and w3 must be int8 (got ${w1.kind}, ${w3.kind}); use rmsNorm + linear`);
  }
  if (w1.bias || w3.bias) throw new Error(`${what}: w1 and w3 must have no bias (InternLM2MLP has none)`);
  if (!(T >= 1 && T <= maxMatvecTokens && K % 4 === 0)) {
    throw new Error(`${what}: needs 1 ≤ T ≤ ${maxMatvecTokens} and K % 4 == 0 (T=${T}, K=${K})`);
  }
  expectTensor(`${what} x`, x, "f32", [T, K]);
  expectTensor(`${what} normWeight`, normWeight, "f32", [K]);
  expectTensor(`${what} w1`, w1.weight, "i8x4", [I, K]);
  expectTensor(`${what} w1 scale`, w1.scale, "f32", [I]);
  expectTensor(`${what} w3`, w3.weight, "i8x4", [I, K]);
  expectTensor(`${what} w3 scale`, w3.scale, "f32", [I]);
  expectTensor(`${what} out`, out, "f32", [T, I]);
  if (out.buffer === x.buffer || out.buffer === normWeight.buffer) {
    throw new Error(`${what}: out (${out.label}) must not alias x or normWeight`);
  }
  // kernels/matvec_i8.wgsl in its gate/up mode: 2–4 rows of W1 and W3 per thread (1.15× the one-row
  // gate_up_silu.wgsl at T = 1, 1.6× at T = 8 on an H100; scripts/bench_matvec.ts).
  recordMatvecI8(r, {
    mode: "gateUp",
    x,
    g: normWeight,
    w1: w1.weight,
    s1: w1.scale,
    w3: w3.weight,
    s3: w3.scale,
    bias: null,
    out,
    eps,
    maxGroupsPerRow: opts.maxGroupsPerRow,
    label: w1.weight.label,
  });
}
