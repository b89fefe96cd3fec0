import type { Gpu } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * The image embeddings of recent requests ([tiles·256, D] f32, the projector's output), kept on the GPU under
 * a byte budget, least recently used first out. Keyed by the images' identity (SHA-256 of every image's bytes
 * and max_num, the engine's imageIdentity): a new conversation about the same pictures, or a follow-up round
 * whose KV cache was evicted, then skips decoding the images and the vision encoder (7 tiles of InternViT-6B:
 * ~1.1 s with LLM.int8, ~2.2 s weight-only on an H200) and costs only its prompt pass.
 *
 * Embeddings are kept only from a pass that encoded one request's images alone: with INT8_MATMUL=llm-int8 a
 * pass's outlier columns depend on every tile in it, so a hit gives exactly what the request's images got
 * when they were last encoded on their own. The cache owns its tensors: `take` hands out a copy the caller
 * owns, `keep` stores one (GPU copies, ~0.1 ms for the 44 MB of 7 tiles).
 */
export class ImageEmbeddingCache {
  /** In use order: the first is the least recently used. */
  private readonly entries = new Map<string, Tensor>();
  hits = 0;
  misses = 0;

  constructor(private readonly gpu: Gpu, readonly budgetBytes: number) {
    if (!(Number.isInteger(budgetBytes) && budgetBytes >= 0)) {
      throw new Error(`image embedding cache: budget ${budgetBytes} must be a whole number of bytes ≥ 0`);
    }
  }

  get bytes(): number {
    let n = 0;
    for (const t of this.entries.values()) n += t.byteLength;
    return n;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether embeddings are kept for `key` (does not count as a use). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** A copy of the embeddings kept for `key`, which the caller owns, or null; counts a hit or a miss. */
  take(key: string): Tensor | null {
    const kept = this.entries.get(key);
    if (!kept) {
      this.misses++;
      return null;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, kept); // most recently used now
    return this.copy(kept, "image_embeds");
  }

  /**
   * Keeps a copy of `embeds` for `key`, evicting the least recently used entries until the budget holds it.
   * Nothing is kept for requests without images (key ""), with the cache off, or for embeddings larger than
   * the whole budget. `embeds` stays the caller's.
   */
  keep(key: string, embeds: Tensor): void {
    if (key === "" || embeds.byteLength > this.budgetBytes) return;
    this.drop(key);
    while (this.entries.size > 0 && this.bytes + embeds.byteLength > this.budgetBytes) {
      const [oldest] = this.entries.keys();
      this.drop(oldest);
    }
    this.entries.set(key, this.copy(embeds, "image_embeds.kept"));
  }

  /** Frees every kept tensor. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    this.entries.get(key)?.buffer.destroy(); // freed once work already submitted that reads it has run
    this.entries.delete(key);
  }

  private copy(src: Tensor, label: string): Tensor {
    const out = this.gpu.createTensor(label, src.dtype, src.shape);
    const r = this.gpu.recorder("image embeds copy");
    r.copyAfter(src, out.buffer);
    r.submit();
    return out;
  }
}
