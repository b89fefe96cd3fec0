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
      const lent = kept.borrow(branch, "", 1);
      if (!lent) throw new Error("ttft: the kept text conversation shared no prefix with its branch");
      sharedTokens = Math.min(lent.shared, branch.length - 1);
      const r = lent.runner.extractRow(0, [[0, sharedTokens]], branch.length + 8);
      try {
        sharedMs.push((await firstToken(branch.slice(sharedTokens), null, r)).at - t);
      } finally {
        r.destroy();
      }
    }
  } finally {
    kept.clear();
  }
  return { byLength, longTokens: long.length, coldMs, sharedMs, sharedTokens };
}
