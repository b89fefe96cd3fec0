/** CPU reference of kernels/gather_rows.wgsl: out[i] = src[rows[i]], NaN rows for rows outside [0, R). */
export function gatherRowsRef(src: Float32Array, D: number, rows: ArrayLike<number>): Float32Array {
  const R = src.length / D;
  const out = new Float32Array(rows.length * D).fill(NaN);
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= 0 && rows[i] < R) out.set(src.subarray(rows[i] * D, rows[i] * D + D), i * D);
  }
  return out;
}
