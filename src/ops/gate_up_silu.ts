import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { type LinearWeights, maxMatvecTokens } from "./linear.ts";

/** Output rows per workgroup of kernels/gate_up_silu.wgsl (ROWS). */
const rowsPerGroup = 8;

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
  // One grid dimension holds at most 65535 workgroups: fold into 2-D (the kernel bounds-checks rows).
  const groups = Math.ceil(I / rowsPerGroup);
  const groupsPerRow = Math.min(groups, opts.maxGroupsPerRow ?? 65535);
  r.dispatch("gate_up_silu", {
    bindings: [x, normWeight, w1.weight, w1.scale, w3.weight, w3.scale, out],
    params: [I, K / 4, f32(eps), groupsPerRow],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    constants: { TT: T },
    label: `gate_up_silu ${w1.weight.label}`,
  });
}
