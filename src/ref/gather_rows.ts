/** CPU reference of kernels/gather_rows.wgsl: out[i] = src[rows[i]], NaN rows for rows outside [0, R). */
export function gatherRowsRef(src: Float32Array, D: number, rows: ArrayLike<number>): Float32Array {
  const R = src.length / D;
  const out = new Float32Array(rows.length * D).fill(NaN);
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= 0 && rows[i] < R) out.set(src.subarray(rows[i] * D, rows[i] * D + D), i * D);
  }
  return out;
}

/**
 * CPU reference of joinRowGroups: out row g·m + j (of n rows of W) is src[g, j·W … (j+1)·W), src [G, S].
 */
export function joinRowGroupsRef(
  src: Float32Array,
  S: number,
  m: number,
  n: number,
  W: number,
): Float32Array {
  const out = new Float32Array(n * W);
  for (let row = 0; row < n; row++) {
    const at = Math.floor(row / m) * S + (row % m) * W;
    out.set(src.subarray(at, at + W), row * W);
  }
  return out;
}
