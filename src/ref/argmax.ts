/** CPU reference of kernels/argmax.wgsl: per row of logits [B, V], the first index of the maximum. */
export function argmaxRef(logits: Float32Array, B: number, V: number): Int32Array {
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[b * V + v] > logits[b * V + best]) best = v;
    out[b] = best;
  }
  return out;
}
