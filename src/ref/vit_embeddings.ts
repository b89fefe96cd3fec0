/** CPU reference of kernels/vit_embeddings.wgsl. patches: [N, P, D], cls: [D], pos: [P+1, D] → [N, P+1, D]. */
export function vitEmbeddingsRef(
  patches: Float32Array,
  cls: Float32Array,
  pos: Float32Array,
  N: number,
  P: number,
  D: number,
): Float32Array {
  const out = new Float32Array(N * (P + 1) * D);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j <= P; j++) {
      for (let d = 0; d < D; d++) {
        const v = j === 0 ? cls[d] : patches[(n * P + j - 1) * D + d];
        out[(n * (P + 1) + j) * D + d] = Math.fround(v + pos[j * D + d]);
      }
    }
  }
  return out;
}
