/** CPU reference of kernels/split_vit_qkv.wgsl. qkv: [T, 3D] → q, k, v: [T, D]. */
export function splitVitQkvRef(
  qkv: Float32Array,
  T: number,
  D: number,
): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const q = new Float32Array(T * D), k = new Float32Array(T * D), v = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < D; c++) {
      q[t * D + c] = qkv[t * 3 * D + c];
      k[t * D + c] = qkv[t * 3 * D + D + c];
      v[t * D + c] = qkv[t * 3 * D + 2 * D + c];
    }
  }
  return { q, k, v };
}
