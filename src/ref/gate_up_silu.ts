import type { HostLinear } from "../ops/linear.ts";
import { linearRef } from "./linear.ts";
import { rmsNormRef } from "./rms_norm.ts";
import { siluMulRef } from "./silu_mul.ts";

/**
 * CPU reference of kernels/gate_up_silu.wgsl, composed of the unfused references the decoder used before:
 * siluMul(linear(rmsNorm(x), w1), linear(rmsNorm(x), w3)). x: [T, K], normWeight: [K] → [T, I] f32.
 */
export function gateUpSiluRef(
  x: Float32Array,
  T: number,
  normWeight: Float32Array,
  eps: number,
  w1: HostLinear,
  w3: HostLinear,
): Float32Array {
  const normed = rmsNormRef(x, normWeight, w1.inFeatures, eps);
  return siluMulRef(linearRef(normed, T, w1), linearRef(normed, T, w3));
}
