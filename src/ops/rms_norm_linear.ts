import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { type LinearWeights, maxMatvecTokens } from "./linear.ts";
import { matvecConfig, recordMatvecI8 } from "./matvec_i8.ts";

export interface RmsNormLinearOptions {
  /**
   * Weight rows each warp streams (RPW in kernels/rms_norm_linear.wgsl): 2 (default) shares every x load
   * between two rows; 1 is linear_matvec's exact access pattern, kept for benchmarking against it.
   */
  rowsPerWarp?: 1 | 2;
  /** Tests only: fold the grid into 2-D sooner than the 65535 limit requires. */
  maxGroupsPerRow?: number;
}

/**
 * linear(rmsNorm(x, normWeight, eps), w) in one decode dispatch, without the normed activations:
 * out[t, n] = rsqrt(mean_k x[t, k]² + eps) · scale[n] · Σ_k (x[t, k]·g[k])·W[n, k] + bias[n].
 * x: [T, K] f32 (T ≤ 8, K % 4 == 0); normWeight: [K] f32; w: int8 [N, K]; out: [T, N] f32, not x.
 */
export function rmsNormLinear(
  r: Recorder,
  x: Tensor,
  normWeight: Tensor,
  eps: number,
  w: LinearWeights,
  out: Tensor,
  opts: RmsNormLinearOptions = {},
): void {
  const [T, K] = x.shape;
  const N = w.weight.shape[0];
  const what = `rmsNormLinear ${w.weight.label}`;
  if (w.kind !== "int8") {
    throw new Error(`${what}: weights must be int8 (got ${w.kind}); use rmsNorm + linear`);
  }
  if (!(T >= 1 && T <= maxMatvecTokens && K % 4 === 0)) {
    throw new Error(`${what}: needs 1 ≤ T ≤ ${maxMatvecTokens} and K % 4 == 0 (T=${T}, K=${K})`);
  }
  expectTensor(`${what} x`, x, "f32", [T, K]);
  expectTensor(`${what} normWeight`, normWeight, "f32", [K]);
  expectTensor(`${what} weight`, w.weight, "i8x4", [N, K]);
  expectTensor(`${what} scale`, w.scale, "f32", [N]);
  if (w.bias) expectTensor(`${what} bias`, w.bias, "f32", [N]);
  expectTensor(`${what} out`, out, "f32", [T, N]);
  if (out.buffer === x.buffer || out.buffer === normWeight.buffer) {
    throw new Error(`${what}: out (${out.label}) must not alias x or normWeight`);
  }
  const config = opts.rowsPerWarp ? null : matvecConfig("norm", T, N, K, r.fallbackAdapter);
  if (config) {
    recordMatvecI8(r, {
      mode: "norm",
      x,
      g: normWeight,
      w1: w.weight,
      s1: w.scale,
      w3: null,
      s3: null,
      bias: w.bias,
      out,
      eps,
      config,
      maxGroupsPerRow: opts.maxGroupsPerRow,
      label: w.weight.label,
    });
    return;
  }
  const rpw = opts.rowsPerWarp ?? 2;
  // One grid dimension holds at most 65535 workgroups: fold into 2-D (the kernel bounds-checks rows).
  const groups = Math.ceil(N / (8 * rpw));
  const groupsPerRow = Math.min(groups, opts.maxGroupsPerRow ?? 65535);
  r.dispatch("rms_norm_linear", {
    // Without a bias the binding still needs a read-only buffer: the scale stands in (never read).
    bindings: [x, normWeight, w.weight, w.scale, w.bias ?? w.scale, out],
    params: [N, K / 4, f32(eps), w.bias ? 1 : 0, groupsPerRow],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    constants: { TT: T, RPW: rpw },
    label: `rms_norm_linear ${w.weight.label}`,
  });
}
