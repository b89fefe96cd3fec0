import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { deferredNormUsedParts, deferredNormWidth } from "./deferred_norm_layout.ts";
import type { LinearWeights } from "./linear.ts";

/** Most tokens kernels/deferred_norm_matvec.wgsl takes (per-token accumulators are registers). */
const maxTokens = 8;

/** A deferred-norm tensor [T, deferredNormWidth(D)] for hidden size D (layout: deferred_norm_layout.ts). */
export function createDeferredNormTensor(gpu: Gpu, label: string, T: number, D: number): Tensor {
  return gpu.createTensor(label, "f32", [T, deferredNormWidth(D)]);
}

/**
 * linear(rmsNorm(h, g, eps), w) from a deferred-norm tensor xn that the producer of h filled
 * (linear(…, { normNext: { weight: g, out: xn } })): out[t, n] = inv_t·scale[n]·Σ_k xn[t, k]·W[n, k] + bias.
 * xn: [T, D + P] (T ≤ 8), w: int8 [N, D], out: [T, N] f32, not xn.
 */
export function deferredNormLinear(
  r: Recorder,
  xn: Tensor,
  eps: number,
  w: LinearWeights,
  out: Tensor,
): void {
  record(r, xn, eps, w, null, out, "deferredNormLinear");
}

/**
 * The InternLM2 MLP front half from a deferred-norm tensor: out = silu(n·W1ᵀ) · (n·W3ᵀ), n = rmsNorm(h).
 * xn: [T, D + P] (T ≤ 8), w1, w3: int8 [I, D] without bias, out: [T, I] f32, not xn.
 */
export function deferredNormGateUp(
  r: Recorder,
  xn: Tensor,
  eps: number,
  w1: LinearWeights,
  w3: LinearWeights,
  out: Tensor,
): void {
  record(r, xn, eps, w1, w3, out, "deferredNormGateUp");
}

function record(
  r: Recorder,
  xn: Tensor,
  eps: number,
  w1: LinearWeights,
  w3: LinearWeights | null,
  out: Tensor,
  op: string,
): void {
  const [N, K] = w1.weight.shape;
  const what = `${op} ${w1.weight.label}`;
  const T = xn.shape[0];
  if (w1.kind !== "int8" || (w3 && w3.kind !== "int8")) {
    throw new Error(`${what}: weights must be int8 (got ${w1.kind}${w3 ? `, ${w3.kind}` : ""})`);
  }
  if (w3 && (w1.bias || w3.bias)) {
    throw new Error(`${what}: w1 and w3 must have no bias (InternLM2MLP has none)`);
  }
  if (!(T >= 1 && T <= maxTokens && K % 4 === 0)) {
    throw new Error(`${what}: needs 1 ≤ T ≤ ${maxTokens} and K % 4 == 0 (T=${T}, K=${K})`);
  }
  expectTensor(`${what} xn`, xn, "f32", [T, deferredNormWidth(K)]);
  expectTensor(`${what} weight`, w1.weight, "i8x4", [N, K]);
  expectTensor(`${what} scale`, w1.scale, "f32", [N]);
  if (w1.bias) expectTensor(`${what} bias`, w1.bias, "f32", [N]);
  if (w3?.kind === "int8") {
    expectTensor(`${what} w3`, w3.weight, "i8x4", [N, K]);
    expectTensor(`${what} w3 scale`, w3.scale, "f32", [N]);
  }
  expectTensor(`${what} out`, out, "f32", [T, N]);
  if (out.buffer === xn.buffer) throw new Error(`${what}: out (${out.label}) must not alias xn`);
  const rows = w3 ? 4 : 8; // output rows per workgroup (8 warps, one weight row each)
  const groups = Math.ceil(N / rows);
  const groupsPerRow = Math.min(groups, 65535);
  const s3 = w3?.kind === "int8" ? w3.scale : w1.scale;
  r.dispatch("deferred_norm_matvec", {
    // Unused bindings still need read-only buffers (never read): W1's stand in for W3's, the scale for bias.
    bindings: [xn, w1.weight, w1.scale, w3?.weight ?? w1.weight, s3, w1.bias ?? w1.scale, out],
    params: [
      N,
      K / 4,
      deferredNormWidth(K) / 4,
      deferredNormUsedParts(K),
      f32(eps),
      w1.bias ? 1 : 0,
      groupsPerRow,
    ],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    constants: { TT: T, GATE: w3 ? 1 : 0 },
    label: `deferred_norm_matvec ${w1.weight.label}`,
  });
}
