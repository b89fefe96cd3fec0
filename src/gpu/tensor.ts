/**
 * A typed view of a GPU buffer. WGSL has no 8- or 16-bit storage types we can rely on, so packed
 * dtypes say how many logical elements share one 32-bit word:
 * - `i8x4`: four int8 values per u32 (little-endian byte order), rows padded to a multiple of 4;
 * - `bf16x2`: two bfloat16 values per u32 (element 2i in the low half).
 */
export type DType = "f32" | "i32" | "u32" | "i8x4" | "bf16x2";

export const bytesPerWord = 4;

/** Logical elements stored in one 32-bit word. */
export function elementsPerWord(dtype: DType): number {
  return dtype === "i8x4" ? 4 : dtype === "bf16x2" ? 2 : 1;
}

export class Tensor {
  constructor(
    readonly buffer: GPUBuffer,
    readonly dtype: DType,
    /** Logical shape; for packed dtypes the last dim counts logical elements (before packing). */
    readonly shape: readonly number[],
    readonly label: string,
    /**
     * Where the tensor starts in `buffer` (`rowsView`): kernels are then bound that range alone, so their
     * element 0 is the view's first. 0: the buffer from its start, bound whole.
     */
    readonly byteOffset = 0,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes the tensor occupies: the last dim is rounded up to whole 32-bit words. */
  get byteLength(): number {
    return tensorByteLength(this.dtype, this.shape);
  }

  describe(): string {
    return `${this.label} [${this.shape.join(", ")}] ${this.dtype}`;
  }
}

export function tensorByteLength(dtype: DType, shape: readonly number[]): number {
  if (shape.length === 0) return bytesPerWord;
  const per = elementsPerWord(dtype);
  const last = shape[shape.length - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return rows * Math.ceil(last / per) * bytesPerWord;
}

/** Throws unless `t` has exactly `shape` (use -1 for "any") and `dtype`. */
export function expectTensor(
  what: string,
  t: Tensor,
  dtype: DType,
  shape: readonly number[],
): void {
  const ok = t.dtype === dtype && t.shape.length === shape.length &&
    shape.every((d, i) => d === -1 || d === t.shape[i]);
  if (!ok) {
    throw new Error(
      `${what}: expected [${shape.map((d) => d === -1 ? "*" : d).join(", ")}] ${dtype}, got ${t.describe()}`,
    );
  }
}

/** The same buffer seen with another shape of equal element count (no copy). */
export function reshape(t: Tensor, shape: readonly number[], label = t.label): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== t.numel || shape[shape.length - 1] % elementsPerWord(t.dtype) !== 0) {
    throw new Error(`reshape ${t.describe()} to [${shape.join(", ")}]: element counts or packing differ`);
  }
  return new Tensor(t.buffer, t.dtype, shape, label, t.byteOffset);
}

/** WebGPU's default minStorageBufferOffsetAlignment: where a bound range of a storage buffer may start. */
export const storageOffsetAlign = 256;

/**
 * Rows from … from + count − 1 of `t` (its first dimension), no copy: a kernel bound the view reads and
 * writes those rows as its rows 0 … count − 1. The rows must start at a multiple of 256 bytes in the buffer
 * (a bound range's alignment).
 */
export function rowsView(t: Tensor, from: number, count: number, label = t.label): Tensor {
  const rows = t.shape[0];
  if (t.byteOffset !== 0 || t.shape.length < 2 || !(from >= 0 && count >= 1 && from + count <= rows)) {
    throw new Error(`rowsView of ${t.describe()}: rows ${from}…${from + count - 1} of a tensor seen whole`);
  }
  const rowBytes = t.byteLength / rows;
  const offset = from * rowBytes;
  if (offset % storageOffsetAlign !== 0) {
    throw new Error(`rowsView of ${t.describe()} from row ${from}: ${offset} bytes is not a multiple of 256`);
  }
  return new Tensor(t.buffer, t.dtype, [count, ...t.shape.slice(1)], label, offset);
}

/**
 * The front of `t`'s buffer seen with a smaller (or equal) shape, no copy: kernels are bound the whole
 * buffer but read and write only the elements their shapes give (e.g. a scratch built for more tiles).
 */
export function frontView(t: Tensor, shape: readonly number[], label = t.label): Tensor {
  if (tensorByteLength(t.dtype, shape) > t.byteLength) {
    throw new Error(`frontView of ${t.describe()} as [${shape.join(", ")}]: larger than the tensor`);
  }
  return new Tensor(t.buffer, t.dtype, shape, label, t.byteOffset);
}
