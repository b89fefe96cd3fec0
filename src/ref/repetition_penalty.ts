/** CPU reference of kernels/mark_seen.wgsl: seen [B, V] (copied) with ids [B, L] (L per row) marked. */
export function markSeenRef(ids: Int32Array, seen: Uint32Array, B: number, V: number): Uint32Array {
  const out = seen.slice();
  const L = ids.length / B;
  for (let i = 0; i < ids.length; i++) if (ids[i] >= 0 && ids[i] < V) out[Math.floor(i / L) * V + ids[i]] = 1;
  return out;
}

/** CPU reference of kernels/repetition_penalty.wgsl (HF RepetitionPenaltyLogitsProcessor). */
export function repetitionPenaltyRef(logits: Float32Array, seen: Uint32Array, penalty: number): Float32Array {
  const p = Math.fround(penalty);
  return logits.map((x, i) => seen[i] ? (x < 0 ? x * p : x / p) : x);
}
