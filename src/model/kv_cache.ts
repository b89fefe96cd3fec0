import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LanguageDims } from "./dims.ts";

/**
 * Keys and values of every layer for B sequences of up to S positions, on the GPU.
 * k[l], v[l]: [B, S, Hkv·Dh] f32 (token-major: one token's heads are contiguous, so a step writes one row).
 * keyValid: [B, S] i32 — 0 marks left padding of batched prompts (the reference's attention_mask).
 */
export class KvCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  readonly keyValid: Tensor;
  /** Cache positions filled so far (same for every row: batches are left-padded to one length). */
  length = 0;

  constructor(gpu: Gpu, dims: LanguageDims, readonly batch: number, readonly capacity: number) {
    const width = dims.kvHeads * dims.headDim;
    for (let l = 0; l < dims.layers; l++) {
      this.k.push(gpu.createTensor(`lm.L${l}.k_cache`, "f32", [batch, capacity, width]));
      this.v.push(gpu.createTensor(`lm.L${l}.v_cache`, "f32", [batch, capacity, width]));
    }
    this.keyValid = gpu.createTensor("lm.key_valid", "i32", [batch, capacity]);
  }

  /**
   * Records copies of `count` positions of row `fromRow` of `src`, from its cache index `from`, into row
   * `toRow` of this cache at index `to`: every layer's keys and values (keyValid is the caller's).
   */
  copyPositions(
    r: Recorder,
    src: KvCache,
    from: { row: number; at: number },
    to: { row: number; at: number },
    count: number,
  ): void {
    if (count === 0) return;
    const width = this.k[0].shape[2] * 4;
    const srcAt = (from.row * src.capacity + from.at) * width,
      dstAt = (to.row * this.capacity + to.at) * width;
    for (let l = 0; l < this.k.length; l++) {
      r.copyAfter(src.k[l], this.k[l].buffer, count * width, dstAt, srcAt);
      r.copyAfter(src.v[l], this.v[l].buffer, count * width, dstAt, srcAt);
    }
  }

  get bytes(): number {
    return this.k.reduce((n, t) => n + 2 * t.byteLength, this.keyValid.byteLength);
  }

  destroy(): void {
    for (const t of [...this.k, ...this.v, this.keyValid]) t.buffer.destroy();
  }
}
