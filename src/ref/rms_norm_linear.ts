import type { HostLinear } from "../ops/linear.ts";
import { linearRef } from "./linear.ts";
import { rmsNormRef } from "./rms_norm.ts";

/**
 * CPU reference of kernels/rms_norm_linear.wgsl, composed of the unfused references the decoder used
 * before: linear(rmsNorm(x), w). x: [T, K], normWeight: [K] → [T, N] f32.
 */
export function rmsNormLinearRef(
  x: Float32Array,
  T: number,
  normWeight: Float32Array,
  eps: number,
  w: HostLinear,
): Float32Array {
  return linearRef(rmsNormRef(x, normWeight, w.inFeatures, eps), T, w);
}
