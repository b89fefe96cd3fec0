/**
 * The safetensors dtypes an InternVL LLM.int8 checkpoint uses, their sizes, and conversion to f32.
 * BF16/F16: weights and norms; F32: bitsandbytes `SCB` row scales; I8: int8 weights (`CB`);
 * U8: the 0-dim bitsandbytes `weight_format` marker. Nothing else occurs, so anything else is rejected.
 */
export type Dtype = "BF16" | "F16" | "F32" | "I8" | "U8";

export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { BF16: 2, F16: 2, F32: 4, I8: 1, U8: 1 };

export function isDtype(value: unknown): value is Dtype {
  return typeof value === "string" && Object.hasOwn(DTYPE_BYTES, value);
}

export function isFloatDtype(dtype: Dtype): dtype is "BF16" | "F16" | "F32" {
  return dtype === "BF16" || dtype === "F16" || dtype === "F32";
}

// Typed-array views below use the host byte order; safetensors is little-endian, and so is every host
// Deno + WebGPU runs on (x86-64, arm64).

/** bf16 is the top half of an f32: exact widening. bytes: [n·2] → [n] f32 */
export function bf16ToFloat32(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >>> 1;
  const src = halves(bytes);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  return out;
}

/** IEEE half → f32, exact (subnormals, ±inf and NaN included). bytes: [n·2] → [n] f32 */
export function f16ToFloat32(bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength >>> 1;
  const src = halves(bytes);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 31) out[i] = mant === 0 ? sign * Infinity : NaN;
    else out[i] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return out;
}

/** A u16 view of the bytes, copying only when the view would be misaligned. */
function halves(bytes: Uint8Array): Uint16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 1);
}
