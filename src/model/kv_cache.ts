import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { type DType, elementsPerWord, type Tensor } from "../gpu/tensor.ts";
import type { LanguageDims } from "./dims.ts";

/**
 * How the cache stores keys and values (KV_CACHE_DTYPE): `f32` (the default), or `bf16` as the PyTorch
 * reference keeps its cache — half the bytes, so GPU_KV_CACHE_BYTES keeps twice the positions and a decode
 * step's attention reads half. Math stays f32 either way: the kernels round to bf16 (nearest even) when they
 * write the cache and widen when they read it (kernels/kv_bf16.wgsl).
 */
export type KvCacheDtype = "f32" | "bf16";

export const kvCacheDtypes: readonly KvCacheDtype[] = ["f32", "bf16"];

/** The tensor dtype of a cache of `dtype`: bf16 is stored two to a u32 word (element 2i in the low half). */
export function kvTensorDtype(dtype: KvCacheDtype): DType {
  return dtype === "bf16" ? "bf16x2" : "f32";
}

/** Bytes one cached key or value element takes: 4 (f32) or 2 (bf16). */
export function kvValueBytes(dtype: KvCacheDtype): number {
  return 4 / elementsPerWord(kvTensorDtype(dtype));
}

/**
 * Keys and values of every layer for B sequences of up to S positions, on the GPU.
 * k[l], v[l]: [B, S, Hkv·Dh] f32 or bf16x2 (`dtype`; token-major: one token's heads are contiguous, so a
 * step writes one row). keyValid: [B, S] i32 — 0 marks left padding of batched prompts (the reference's
 * attention_mask).
 */
export class KvCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  readonly keyValid: Tensor;
  /** Cache positions filled so far (same for every row: batches are left-padded to one length). */
  length = 0;

  constructor(
    gpu: Gpu,
    dims: LanguageDims,
    readonly batch: number,
    readonly capacity: number,
    readonly dtype: KvCacheDtype = "f32",
  ) {
    const width = dims.kvHeads * dims.headDim;
    const t = kvTensorDtype(dtype);
    for (let l = 0; l < dims.layers; l++) {
      this.k.push(gpu.createTensor(`lm.L${l}.k_cache`, t, [batch, capacity, width]));
      this.v.push(gpu.createTensor(`lm.L${l}.v_cache`, t, [batch, capacity, width]));
    }
    this.keyValid = gpu.createTensor("lm.key_valid", "i32", [batch, capacity]);
  }

  /** Bytes of one position of one layer's keys (or values): Hkv·Dh elements of 4 or 2 bytes. */
  get positionBytes(): number {
    return this.k[0].byteLength / (this.batch * this.capacity);
  }

  /**
   * Records copies of `count` positions of row `fromRow` of `src`, from its cache index `from`, into row
   * `toRow` of this cache at index `to`: every layer's keys and values (keyValid is the caller's). Both
   * caches store the same dtype (the bytes are copied as they are).
   */
  copyPositions(
    r: Recorder,
    src: KvCache,
    from: { row: number; at: number },
    to: { row: number; at: number },
    count: number,
  ): void {
    if (src.dtype !== this.dtype) {
      throw new Error(`copyPositions: a ${src.dtype} cache's positions cannot go into a ${this.dtype} cache`);
    }
    if (count === 0) return;
    const width = this.positionBytes;
    const srcAt = (from.row * src.capacity + from.at) * width,
      dstAt = (to.row * this.capacity + to.at) * width;
    for (let l = 0; l < this.k.length; l++) {
      r.copyAfter(src.k[l], this.k[l].buffer, count * width, dstAt, srcAt);
      r.copyAfter(src.v[l], this.v[l].buffer, count * width, dstAt, srcAt);
    }
  }

  /**
   * Records copies that put row `rows[i]` of this cache (every layer's keys and values, all positions) into
   * row i of `dst` (tensors shaped and typed like this cache's): beam search's _reorder_cache. A row may be
   * taken several times. The bytes are copied as they are, so a bf16 cache never passes through f32.
   */
  copyRowsTo(r: Recorder, rows: readonly number[], dst: { k: Tensor[]; v: Tensor[] }): void {
    const rowBytes = this.positionBytes * this.capacity;
    const fits = (t: Tensor) => t.dtype === this.k[0].dtype && t.byteLength === this.k[0].byteLength;
    if (
      dst.k.length !== this.k.length || dst.v.length !== this.v.length || ![...dst.k, ...dst.v].every(fits)
    ) {
      throw new Error(
        `copyRowsTo: the destination is not shaped like ${this.k[0].describe()} × ${this.k.length}`,
      );
    }
    if (rows.length > this.batch || rows.some((b) => !Number.isInteger(b) || b < 0 || b >= this.batch)) {
      throw new Error(`copyRowsTo: rows [${rows}] must be ≤ ${this.batch} rows of 0..${this.batch - 1}`);
    }
    for (let l = 0; l < this.k.length; l++) {
      rows.forEach((from, to) => {
        r.copyAfter(this.k[l], dst.k[l].buffer, rowBytes, to * rowBytes, from * rowBytes);
        r.copyAfter(this.v[l], dst.v[l].buffer, rowBytes, to * rowBytes, from * rowBytes);
      });
    }
  }

  get bytes(): number {
    return this.k.reduce((n, t) => n + 2 * t.byteLength, this.keyValid.byteLength);
  }

  destroy(): void {
    for (const t of [...this.k, ...this.v, this.keyValid]) t.buffer.destroy();
  }
}
