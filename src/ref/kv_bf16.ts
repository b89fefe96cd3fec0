// CPU reference of kernels/kv_bf16.wgsl, the bf16 storage of the LM KV cache: f32 values rounded to bf16
// (nearest, ties to even; NaN kept NaN) two to a u32 word, element 2i in the low half, and widened back.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bf16 bits of x, rounded to nearest even (overflow → ±Inf); a NaN keeps sign and top payload, quiet. */
export function bf16Rne(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 0) >>> 16;
}

/** [n] f32 → [ceil(n/2)] words of bf16 pairs, as the kernels store them. */
export function packBf16(x: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(Math.ceil(x.length / 2));
  for (let i = 0; i < x.length; i++) out[i >> 1] |= bf16Rne(x[i]) << (16 * (i & 1));
  return out;
}

/** [ceil(n/2)] words of bf16 pairs → [n] f32 (exact). */
export function unpackBf16(words: Uint32Array, n = 2 * words.length): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = i & 1 ? words[i >> 1] & 0xffff0000 : (words[i >> 1] << 16) >>> 0;
  return out;
}

/** x with every value rounded to bf16 (what a bf16 cache gives back), as f32. */
export function roundBf16(x: ArrayLike<number>): Float32Array {
  return unpackBf16(packBf16(x), x.length);
}
