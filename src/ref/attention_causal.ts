/**
 * CPU reference of kernels/attention_causal.wgsl (+ its split-K combine): causal GQA attention over a
 * KV cache with left-padding mask, softmax in float64; rows that see no valid key are zeros.
 * q: [B·T, H·Dh]; kCache, vCache: [B, S, Hkv·Dh]; keyValid: [B, S] → out [B·T, H·Dh].
 */
export function attentionCausalRef(
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  keyValid: Int32Array,
  dims: { B: number; T: number; S: number; startPos: number; H: number; Hkv: number; Dh: number },
): Float32Array {
  const { B, T, S, startPos, H, Hkv, Dh } = dims;
  const G = H / Hkv, W = Hkv * Dh;
  const scale = 1 / Math.sqrt(Dh);
  const out = new Float32Array(B * T * H * Dh);
  const s = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < H; j++) {
        const hk = Math.floor(j / G);
        const qo = ((b * T + t) * H + j) * Dh;
        let max = -Infinity;
        const last = startPos + t;
        for (let pos = 0; pos <= last; pos++) {
          if (!keyValid[b * S + pos]) continue;
          let acc = 0;
          for (let d = 0; d < Dh; d++) acc += q[qo + d] * kCache[(b * S + pos) * W + hk * Dh + d];
          s[pos] = acc * scale;
          if (s[pos] > max) max = s[pos];
        }
        if (max === -Infinity) continue; // all keys masked: zeros
        let sum = 0;
        for (let pos = 0; pos <= last; pos++) {
          if (keyValid[b * S + pos]) sum += s[pos] = Math.exp(s[pos] - max);
        }
        for (let d = 0; d < Dh; d++) {
          let acc = 0;
          for (let pos = 0; pos <= last; pos++) {
            if (keyValid[b * S + pos]) acc += s[pos] * vCache[(b * S + pos) * W + hk * Dh + d];
          }
          out[qo + d] = acc / sum;
        }
      }
    }
  }
  return out;
}
