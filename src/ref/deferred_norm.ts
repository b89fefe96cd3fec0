import { deferredNormWidth } from "../ops/deferred_norm_layout.ts";

/**
 * CPU reference of a deferred-norm tensor (src/ops/deferred_norm_layout.ts) for h: [T, D] and the RMSNorm
 * weight g: [D]: row t = h[t, ·]·g, then Σ h[t, n]² over each 8-row block n = 8w … 8w+7, zero padded.
 */
export function deferredNormRef(h: Float32Array, T: number, D: number, g: Float32Array): Float32Array {
  const width = deferredNormWidth(D);
  const out = new Float32Array(T * width);
  for (let t = 0; t < T; t++) {
    const row = t * width;
    for (let n = 0; n < D; n++) {
      const v = h[t * D + n];
      out[row + n] = v * g[n];
      out[row + D + Math.floor(n / 8)] += v * v;
    }
  }
  return out;
}
