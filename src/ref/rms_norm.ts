/** CPU reference of kernels/rms_norm.wgsl (f64 statistics). x: [T, D], weight: [D] → [T, D] f32. */
export function rmsNormRef(x: Float32Array, weight: Float32Array, D: number, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += D) {
    let s = 0;
    for (let i = 0; i < D; i++) s += x[base + i] * x[base + i];
    const inv = 1 / Math.sqrt(s / D + eps);
    for (let i = 0; i < D; i++) out[base + i] = x[base + i] * inv * weight[i];
  }
  return out;
}
