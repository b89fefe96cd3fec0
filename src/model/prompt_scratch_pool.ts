import type { Gpu } from "../gpu/device.ts";
import { DispatchCache } from "../gpu/dispatch_cache.ts";
import { frontView, type Tensor } from "../gpu/tensor.ts";
import { maxMatvecTokens } from "../ops/linear.ts";
import type { LlmInt8ScratchPool } from "../ops/llm_int8.ts";
import type { LanguageDims } from "./dims.ts";
import type { Int8MatmulSetting } from "./int8_matmul.ts";
import { LanguageScratch } from "./language.ts";

/** Longest single-sequence prompt pass whose scratch is kept between passes. */
export const maxKeptPromptTokens = 64;

/** How many kept scratch sets wait unused at most; the least recently used beyond are destroyed. */
const keptIdle = 16;

/** A prompt pass's inputs that change from pass to pass ([T] i32 each, lastRows [1] i32). */
export interface PromptInputs {
  ids: Tensor;
  imageRow: Tensor;
  positions: Tensor;
  lastRows: Tensor;
}

/** What one prompt pass holds from `acquire` until `release`. */
export interface PromptLease {
  /** The activations, seen as the pass's T tokens. */
  readonly scratch: LanguageScratch;
  /** The pass's inputs, seen as its T tokens; written at record time (Gpu.writeTensor). */
  readonly inputs: PromptInputs;
  /** One dispatch cache for each submit of the pass, in order (Recorder.useCaches). */
  readonly caches: readonly DispatchCache[];
}

interface Kept {
  readonly tokens: number; // capacity: the class's most tokens
  readonly scratch: LanguageScratch;
  readonly inputs: PromptInputs;
  readonly caches: DispatchCache[];
  usedAt: number;
}

/**
 * Scratch of short single-sequence prompt passes (a follow-up round's new tokens, and its decode-sized
 * chunks), kept with the dispatch caches of the pass's submits, so that a later pass of the same class binds
 * the same buffers and takes its bind groups from the caches: a fresh 31-token pass built ~1200–1700 bind
 * groups (30 ms of CPU on the CI host, more than its GPU time on the H200 host; PERF.md v56, v57). Classes:
 * each count of up to maxMatvecTokens tokens (decode-sized chunks, whose kernels and split-K scratch depend
 * on it), and one of maxKeptPromptTokens for every longer count (the scratch's front, LanguageScratch.front).
 * Only the dispatches binding a runner's own buffers (its KV cache, its logits) miss in the caches.
 *
 * A lease is the pass's alone until released, which must come after the pass has been submitted: its inputs
 * are written at record time, so a second pass in the same scratch before the first's submit would overwrite
 * them (queue writes run before the next submit).
 */
export class PromptScratchPool {
  private readonly idle: Kept[] = [];
  private readonly leased = new Map<PromptLease, Kept>();
  /** Leases out when the pool was destroyed: their release is then a no-op. */
  private readonly dropped = new WeakSet<PromptLease>();
  private clock = 0;
  /** Leases served by a kept scratch / by a new one (tests, benchmarks). */
  reused = 0;
  made = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly dims: LanguageDims,
    readonly matmul: Int8MatmulSetting,
    private readonly gemmPool: LlmInt8ScratchPool | null,
  ) {}

  /** Whether a pass of B rows of T tokens takes its scratch from the pool. */
  static takes(batch: number, tokens: number): boolean {
    return batch === 1 && tokens >= 1 && tokens <= maxKeptPromptTokens;
  }

  /** Scratch, inputs and `submits` dispatch caches for one pass of `tokens` tokens of one sequence. */
  acquire(tokens: number, submits: number): PromptLease {
    if (!PromptScratchPool.takes(1, tokens) || !Number.isInteger(tokens)) {
      throw new Error(`PromptScratchPool: ${tokens} tokens; it keeps passes of 1–${maxKeptPromptTokens}`);
    }
    const capacity = tokens <= maxMatvecTokens ? tokens : maxKeptPromptTokens;
    const at = this.idle.findIndex((k) => k.tokens === capacity);
    const kept = at >= 0 ? this.idle.splice(at, 1)[0] : this.make(capacity);
    if (at >= 0) this.reused++;
    else this.made++;
    kept.usedAt = ++this.clock;
    while (kept.caches.length < submits) {
      kept.caches.push(new DispatchCache(`lm.prompt${capacity}.part${kept.caches.length}`));
    }
    const front = (t: Tensor) => frontView(t, [tokens]);
    const lease: PromptLease = {
      // Always through front past 8 tokens: it also takes the GEMM scratch the pool holds now.
      scratch: capacity > maxMatvecTokens ? kept.scratch.front(tokens) : kept.scratch,
      inputs: {
        ids: front(kept.inputs.ids),
        imageRow: front(kept.inputs.imageRow),
        positions: front(kept.inputs.positions),
        lastRows: kept.inputs.lastRows,
      },
      caches: kept.caches.slice(0, submits),
    };
    this.leased.set(lease, kept);
    return lease;
  }

  /** Gives a lease back once its pass has been submitted (or dropped unsubmitted). */
  release(lease: PromptLease): void {
    if (this.dropped.has(lease)) return; // the pool was destroyed under it (releaseScratch)
    const kept = this.leased.get(lease);
    if (!kept) throw new Error("PromptScratchPool.release: not a lease of this pool, or released twice");
    this.leased.delete(lease);
    this.idle.push(kept);
    if (this.idle.length > keptIdle) {
      const oldest = this.idle.reduce((a, b) => a.usedAt <= b.usedAt ? a : b);
      this.idle.splice(this.idle.indexOf(oldest), 1);
      destroyKept(oldest);
    }
  }

  /** Kept scratch sets (idle and leased). */
  get size(): number {
    return this.idle.length + this.leased.size;
  }

  destroy(): void {
    for (const lease of this.leased.keys()) this.dropped.add(lease);
    for (const k of [...this.idle, ...this.leased.values()]) destroyKept(k);
    this.idle.length = 0;
    this.leased.clear();
  }

  private make(tokens: number): Kept {
    const g = this.gpu;
    const i32 = (name: string, n: number) => g.createTensor(`lm.prompt${tokens}.${name}`, "i32", [n]);
    return {
      tokens,
      scratch: new LanguageScratch(
        g,
        this.dims,
        1,
        tokens,
        this.matmul,
        this.gemmPool,
        tokens > maxMatvecTokens,
      ),
      inputs: {
        ids: i32("ids", tokens),
        imageRow: i32("image_row", tokens),
        positions: i32("positions", tokens),
        lastRows: i32("last_rows", 1),
      },
      caches: [],
      usedAt: 0,
    };
  }
}

function destroyKept(k: Kept): void {
  k.scratch.destroy();
  for (const t of Object.values(k.inputs)) t.buffer.destroy();
  for (const c of k.caches) c.destroy();
}
