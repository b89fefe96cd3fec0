/** CPU reference of kernels/layer_norm.wgsl (f64 statistics). x: [T, D], weight, bias: [D] → [T, D] f32. */
export function layerNormRef(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  D: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += D) {
    let s = 0;
    for (let i = 0; i < D; i++) s += x[base + i];
    const mean = s / D;
    let q = 0;
    for (let i = 0; i < D; i++) q += (x[base + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(q / D + eps);
    for (let i = 0; i < D; i++) out[base + i] = (x[base + i] - mean) * inv * weight[i] + bias[i];
  }
  return out;
}
