/** CPU reference of kernels/softmax.wgsl: row-wise softmax of x [R, C], accumulated in float64. */
export function softmaxRef(x: Float32Array, R: number, C: number): Float32Array {
  const out = new Float32Array(R * C);
  for (let r = 0; r < R; r++) {
    let m = -Infinity, s = 0;
    for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]);
    for (let c = 0; c < C; c++) s += Math.exp(x[r * C + c] - m);
    for (let c = 0; c < C; c++) out[r * C + c] = Math.exp(x[r * C + c] - m) / s;
  }
  return out;
}
