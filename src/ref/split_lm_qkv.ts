/**
 * CPU reference of kernels/split_lm_qkv.wgsl, written like the reference's
 * rearrange('b q (h gs d) -> b q h gs d'): qkv [T, Hkv·(G+2)·Dh] → q [T, H·Dh], k, v [T, Hkv·Dh].
 */
export function splitLmQkvRef(
  qkv: Float32Array,
  T: number,
  H: number,
  Hkv: number,
  Dh: number,
): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const G = H / Hkv;
  const q = new Float32Array(T * H * Dh),
    k = new Float32Array(T * Hkv * Dh),
    v = new Float32Array(T * Hkv * Dh);
  const at = (t: number, h: number, slot: number, d: number) =>
    qkv[((t * Hkv + h) * (G + 2) + slot) * Dh + d];
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < Hkv; h++) {
      for (let d = 0; d < Dh; d++) {
        for (let g = 0; g < G; g++) q[(t * H + h * G + g) * Dh + d] = at(t, h, g, d);
        k[(t * Hkv + h) * Dh + d] = at(t, h, G, d);
        v[(t * Hkv + h) * Dh + d] = at(t, h, G + 1, d);
      }
    }
  }
  return { q, k, v };
}
