/**
 * CPU reference of kernels/rope.wgsl (HF apply_rotary_pos_emb: x·cos + rotate_half(x)·sin).
 * x: [T, nH·Dh] → new array; positions: [T]; cos, sin: [P, Dh/2].
 */
export function ropeRef(
  x: Float32Array,
  positions: Int32Array,
  cos: Float32Array,
  sin: Float32Array,
  nH: number,
  Dh: number,
): Float32Array {
  const half = Dh / 2;
  const out = new Float32Array(x.length);
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < nH; h++) {
      const a = (t * nH + h) * Dh;
      for (let i = 0; i < half; i++) {
        const c = cos[positions[t] * half + i], s = sin[positions[t] * half + i];
        out[a + i] = x[a + i] * c - x[a + i + half] * s;
        out[a + i + half] = x[a + i + half] * c + x[a + i] * s;
      }
    }
  }
  return out;
}
