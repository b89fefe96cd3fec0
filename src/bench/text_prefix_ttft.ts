// Time to first token of text conversations: a prompt pass by its length, and a long text conversation's
// branch (another question after the same long first message, an edited or regenerated later one) starting
// from a copy of the prefix a kept conversation shares with it, as the engine runs it (sharedPrefix).
import type { Tensor } from "../gpu/tensor.ts";
import type { LmRunner } from "../model/lm_runner.ts";
import type { InternVLModel } from "../model/internvl.ts";
import { KvPrefixCache } from "../engine/kv_prefix_cache.ts";
import { median } from "./gpu_timer.ts";
import { type BenchShapes, syntheticTextIds } from "./shapes.ts";
import { sig } from "./util.ts";

/** One new token on a runner: the output and when its id was back on the CPU (ttftSection's). */
export type FirstToken = (
  prompt: number[],
  imageEmbeds: Tensor | null,
  runner: LmRunner,
) => Promise<{ out: number[][]; at: number }>;

/** Prompt lengths whose pass is timed from an empty runner: what a copied prefix of that many ids saves. */
const passLengths = [16, 32, 64, 128, 256];
/** The branch's own ids after the shared prefix: a short new question and the template's tail. */
const branchTokens = 30;
const repeats = 3;

/**
 * A new conversation's first token as the engine makes it from a kept one's prefix (sharedPrefix): the
 * longest prefix `kept` lends for `ids` (KvPrefixCache.borrow), copied into a runner of its own
 * (LmRunner.extractRow), then the rest of `ids`. When its id was back, and how many ids were copied.
 */
export async function firstTokenFromKeptPrefix(
  kept: KvPrefixCache,
  ids: number[],
  imageKey: string,
  minShared: number,
  firstToken: FirstToken,
  what: string,
): Promise<{ at: number; shared: number }> {
  const lent = kept.borrow(ids, imageKey, minShared);
  if (!lent) throw new Error(`ttft: no kept conversation shared a prefix with ${what}`);
  // At least one id must run to produce the first logits.
  const shared = Math.min(lent.shared, ids.length - 1);
  const r = lent.runner.extractRow(0, [[0, shared]], ids.length + 8);
  try {
    return { at: (await firstToken(ids.slice(shared), null, r)).at, shared };
  } finally {
    r.destroy();
  }
}

export interface TextPrefixTtft {
  /** Median wall ms to the first token of a prompt of each passLengths length, from an empty runner. */
  byLength: Record<string, number | null>;
  longTokens: number;
  coldMs: number;
  sharedMs: number[];
  sharedTokens: number;
}

export async function textPrefixTtft(
  shapes: BenchShapes,
  model: InternVLModel,
  firstToken: FirstToken,
): Promise<TextPrefixTtft> {
  const byLength: Record<string, number | null> = {};
  for (const n of passLengths) {
    const ids = syntheticTextIds(shapes, n, 23);
    const ms: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const runner = model.newRunner(1, n + 8);
      try {
        const t = performance.now();
        ms.push((await firstToken(ids, null, runner)).at - t);
      } finally {
        runner.destroy();
      }
    }
    byLength[n] = sig(median(ms), 4);
  }
  // A long first message, run whole and kept as the engine keeps a round.
  const long = syntheticTextIds(shapes, shapes.prefillTokens, 29);
  const kept = new KvPrefixCache(Number.MAX_SAFE_INTEGER);
  const t0 = performance.now();
  const runner = model.newRunner(1, long.length + 8);
  let coldMs: number;
  try {
    const { out, at } = await firstToken(long, null, runner);
    coldMs = at - t0;
    kept.keep([...long, ...out[0].slice(0, -1)], long.length, "", runner);
  } catch (e) {
    runner.destroy();
    throw e;
  }
  // Its branch: all but the last `branchTokens` ids the same.
  const branch = [
    ...long.slice(0, long.length - branchTokens),
    ...syntheticTextIds(shapes, branchTokens, 31),
  ];
  const sharedMs: number[] = [];
  let sharedTokens = 0;
  try {
    for (let i = 0; i < repeats; i++) {
      const t = performance.now();
      const copied = await firstTokenFromKeptPrefix(kept, branch, "", 1, firstToken, "its branch");
      sharedMs.push(copied.at - t);
      sharedTokens = copied.shared;
    }
  } finally {
    kept.clear();
  }
  return { byLength, longTokens: long.length, coldMs, sharedMs, sharedTokens };
}
