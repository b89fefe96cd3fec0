import type { InternVLModel } from "../model/internvl.ts";
import { defaultStepsPerReadback, generate } from "./generate.ts";
import { defaultGenerationConfig } from "./types.ts";

/**
 * Tokens of the greedy generation `warmUpEngine` runs: four readback groups of the default loop, so that its
 * encoded-ahead steps, drains and settle waits have all run once.
 */
export const warmGenerationTokens = 4 * defaultStepsPerReadback;

/**
 * What WebGpuEngine.load runs before it serves (and the bench before the sections that stand for a serving
 * engine): the model's warm-up (every decode and prompt pipeline, the kept scratch), then one short greedy
 * generation through generate()'s loop on a text prompt of 8 ids. After the pipelines alone, the first
 * generation of a process still started slow: on an H200 its first readback group after the prompt left the
 * GPU idle 11.7–39.7 ms in each of three processes, its first token up to 46 ms after a one-token round's;
 * with this generation before it, 4.4–7.3 ms and no delay beyond 6.5 ms (docs/PERF.md v74). Meanwhile the
 * thread runs outside any system call (/proc sampling): a first-use cost of the process, not of the GPU;
 * which one is not known.
 */
export async function warmUpEngine(model: InternVLModel): Promise<void> {
  await model.warmUp();
  const ids = Array.from({ length: 8 }, (_, i) => 1 + i);
  await generate(model, { ids: [ids], mask: [ids.map(() => 1)], imageEmbeds: null }, {
    ...defaultGenerationConfig,
    maxNewTokens: warmGenerationTokens,
  }, { eosId: -1, imageContextId: -1 }); // no end token, no image: every step runs
}
