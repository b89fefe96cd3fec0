import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

// Experiment (kernels/quantize_rows_i8.wgsl, kernels/matvec_dp4a.wgsl, scripts/bench_matvec_dp4a.ts), not
// used by the model: the decode linear with int8 activations through dot4I8Packed, the issue's "worth
// measuring" item. It changes the numerics (activation rounding, as bitsandbytes' LLM.int8 does for
// outlier-free columns), so the model keeps its exact weight-only kernels.

/** x [T, K] f32 → xq [T, K/4] u32 (int8 ×4, per-row absmax scaling) and scale [T] f32. K % 4 == 0. */
export function quantizeRowsI8(r: Recorder, x: Tensor, xq: Tensor, scale: Tensor): void {
  const [T, K] = x.shape;
  if (K % 4 !== 0) throw new Error(`quantizeRowsI8: K % 4 != 0 (K=${K})`);
  expectTensor("quantizeRowsI8 xq", xq, "u32", [T, K / 4]);
  expectTensor("quantizeRowsI8 scale", scale, "f32", [T]);
  r.dispatch("quantize_rows_i8", {
    bindings: [x, xq, scale],
    params: [K / 4],
    workgroups: [T, 1],
    label: `quantize_rows_i8 ${x.label}`,
  });
}

/** Tiling of kernels/matvec_dp4a.wgsl. */
export interface Dp4aConfig {
  R: 1 | 2 | 4;
  LANES: 16 | 32 | 64;
  U: 1 | 2 | 4;
}

/**
 * out[t, n] (+)= scale[n] · xs[t] · Σ_q dot4I8Packed(xq[t, q], W[n, q]). xq: [T, K/4] u32 (T ≤ 8),
 * xs: [T] f32, w: int8 [N, K] i8x4, scale: [N] f32, out: [T, N] f32.
 */
export function matvecDp4a(
  r: Recorder,
  xq: Tensor,
  xs: Tensor,
  w: Tensor,
  scale: Tensor,
  out: Tensor,
  opts: { accumulate?: boolean; config?: Dp4aConfig } = {},
): void {
  const [T, K4] = xq.shape;
  const [N, K] = w.shape;
  if (!(T >= 1 && T <= 8 && K4 * 4 === K)) {
    throw new Error(`matvecDp4a: needs 1 ≤ T ≤ 8 and xq [T, K/4] (T=${T}, xq width ${K4}, K=${K})`);
  }
  expectTensor("matvecDp4a xs", xs, "f32", [T]);
  expectTensor("matvecDp4a w", w, "i8x4", [N, K]);
  expectTensor("matvecDp4a scale", scale, "f32", [N]);
  expectTensor("matvecDp4a out", out, "f32", [T, N]);
  const c = opts.config ?? { R: 4, LANES: 32, U: 4 };
  const groups = Math.ceil(N / (c.R * (256 / c.LANES)));
  const groupsPerRow = Math.min(groups, 65535);
  r.dispatch("matvec_dp4a", {
    bindings: [xq, xs, w, scale, out],
    params: [N, K / 4, groupsPerRow, opts.accumulate ? 1 : 0],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    constants: { TT: T, R: c.R, LANES: c.LANES, U: c.U },
    label: `matvec_dp4a ${w.label}`,
  });
}
