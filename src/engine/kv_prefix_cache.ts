import type { LmRunner } from "../model/lm_runner.ts";

interface KeptSequence {
  /** Token ids whose keys/values fill positions 0 … tokens.length−1 of the runner's cache. */
  tokens: number[];
  /** How many of them were the round's prompt (the rest is its answer). */
  promptLength: number;
  /**
   * Identity of the images whose embeddings sit at the <IMG_CONTEXT> positions: those positions have the
   * same token id whatever the picture, so equal ids alone must never hand one image's cache to another.
   */
  imageKey: string;
  runner: LmRunner;
  lastUsed: number;
}

/**
 * Conversations kept on the GPU between rounds, keyed by their token prefix: a follow-up round whose
 * prompt starts with an earlier round's prompt + answer continues that round's KV cache instead of
 * re-running the vision encoder and the whole prompt. Matching by tokens (not by session id) also serves
 * OpenAI-style clients that resend the history. Least recently used entries go first when the kept caches
 * exceed the byte budget.
 */
export class KvPrefixCache {
  private readonly kept: KeptSequence[] = [];
  private clock = 0;
  hits = 0;
  misses = 0;
  /** Prefixes `borrow` handed out to be copied. */
  borrowed = 0;

  constructor(readonly budgetBytes: number) {}

  get bytes(): number {
    return this.kept.reduce((n, k) => n + k.runner.cache.bytes, 0);
  }

  get size(): number {
    return this.kept.length;
  }

  /**
   * Removes and returns the kept runner with the same images sharing the longest prefix with `ids`, if
   * that prefix holds the
   * kept round's whole prompt (a follow-up or a retry of that conversation, not merely the same system
   * prompt), is at least `minShared` tokens long and the runner has room for `capacityNeeded` positions.
   * The caller owns the runner afterwards (give it back with `keep`, or destroy it).
   */
  take(
    ids: readonly number[],
    imageKey: string,
    minShared: number,
    capacityNeeded: number,
  ): { runner: LmRunner; shared: number } | null {
    const { best, bestShared } = this.find(ids, imageKey, minShared, capacityNeeded);
    if (best < 0) {
      this.misses++;
      return null;
    }
    this.hits++;
    const [k] = this.kept.splice(best, 1);
    return { runner: k.runner, shared: bestShared };
  }

  /** The prefix `take` with these arguments would share; 0 where it would return nothing. Takes nothing. */
  sharedWith(ids: readonly number[], imageKey: string, minShared: number, capacityNeeded: number): number {
    const { best, bestShared } = this.find(ids, imageKey, minShared, capacityNeeded);
    return best >= 0 ? bestShared : 0;
  }

  /**
   * The kept runner with the same images sharing the longest prefix with `ids`, at least `minShared` tokens,
   * whether or not that holds the kept round's whole prompt, left in the cache (as used now): another
   * conversation about the same pictures (the same system prompt and image block, another question) copies
   * those positions out (LmRunner.extractRow) instead of running them again. Copy before anything is kept:
   * `keep` may evict it.
   */
  borrow(
    ids: readonly number[],
    imageKey: string,
    minShared: number,
  ): { runner: LmRunner; shared: number } | null {
    const { best, bestShared } = this.find(ids, imageKey, Math.max(1, minShared), 0, false);
    if (best < 0) return null;
    this.borrowed++;
    const k = this.kept[best];
    k.lastUsed = ++this.clock;
    this.kept.sort((a, b) => b.lastUsed - a.lastUsed);
    return { runner: k.runner, shared: bestShared };
  }

  /** The prefix `borrow` with these arguments would share; 0 where it would return nothing. Marks nothing. */
  borrowableWith(ids: readonly number[], imageKey: string, minShared: number): number {
    const { best, bestShared } = this.find(ids, imageKey, Math.max(1, minShared), 0, false);
    return best >= 0 ? bestShared : 0;
  }

  private find(
    ids: readonly number[],
    imageKey: string,
    minShared: number,
    capacityNeeded: number,
    wholePrompt = true,
  ) {
    let best = -1, bestShared = 0;
    this.kept.forEach((k, i) => {
      const shared = commonPrefix(k.tokens, ids);
      const usable = k.imageKey === imageKey && (!wholePrompt || shared >= k.promptLength) &&
        shared >= minShared && k.runner.capacity >= capacityNeeded;
      if (usable && shared > bestShared) {
        best = i;
        bestShared = shared;
      }
    });
    return { best, bestShared };
  }

  /** Keeps `runner` holding `tokens`; evicts least recently used sequences beyond the budget. */
  keep(tokens: number[], promptLength: number, imageKey: string, runner: LmRunner): void {
    if (this.budgetBytes <= 0 || runner.cache.bytes > this.budgetBytes) {
      runner.destroy();
      return;
    }
    this.kept.push({ tokens, promptLength, imageKey, runner, lastUsed: ++this.clock });
    this.kept.sort((a, b) => b.lastUsed - a.lastUsed);
    let total = this.bytes;
    while (total > this.budgetBytes) {
      const old = this.kept.pop()!;
      total -= old.runner.cache.bytes;
      old.runner.destroy();
    }
  }

  clear(): void {
    for (const k of this.kept.splice(0)) k.runner.destroy();
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
