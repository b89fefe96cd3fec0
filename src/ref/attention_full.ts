/**
 * CPU reference of kernels/attention_full.wgsl (InternViT attention, no mask), softmax in float64.
 * q, k, v: [B·T, H·Dh] → out: [B·T, H·Dh].
 */
export function attentionFullRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  B: number,
  T: number,
  H: number,
  Dh: number,
): Float32Array {
  const W = H * Dh;
  const out = new Float32Array(B * T * W);
  const scale = 1 / Math.sqrt(Dh);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * W + h * Dh;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          const ko = (b * T + j) * W + h * Dh;
          let acc = 0;
          for (let d = 0; d < Dh; d++) acc += q[qo + d] * scale * k[ko + d];
          s[j] = acc;
          if (acc > max) max = acc;
        }
        let sum = 0;
        for (let j = 0; j < T; j++) sum += s[j] = Math.exp(s[j] - max);
        for (let d = 0; d < Dh; d++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += s[j] * v[(b * T + j) * W + h * Dh + d];
          out[qo + d] = acc / sum;
        }
      }
    }
  }
  return out;
}
