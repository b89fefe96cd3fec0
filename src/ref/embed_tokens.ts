/** Little-endian bf16 bytes → f32 (the bf16 bits are the top half of the f32). [n·2] bytes → [n] */
export function bf16ToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength >> 1);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) bits[i] = (bytes[2 * i] | bytes[2 * i + 1] << 8) << 16;
  return out;
}

/**
 * CPU reference of kernels/embed_tokens.wgsl. table: [V, D] f32, ids/imageRow: [T], image: [M, D] f32 or
 * null → [T, D] f32; out-of-range ids or image rows give NaN rows.
 */
export function embedTokensRef(
  table: Float32Array,
  D: number,
  ids: Int32Array,
  imageRow: Int32Array,
  image: Float32Array | null,
): Float32Array {
  const V = table.length / D, M = image ? image.length / D : 0;
  const out = new Float32Array(ids.length * D).fill(NaN);
  for (let t = 0; t < ids.length; t++) {
    const row = imageRow[t];
    const [src, at] = row >= 0
      ? (row < M ? [image!, row * D] : [null, 0])
      : (ids[t] >= 0 && ids[t] < V ? [table, ids[t] * D] : [null, 0]);
    if (src) out.set(src.subarray(at, at + D), t * D);
  }
  return out;
}
