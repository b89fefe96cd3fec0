import type { Recorder } from "../gpu/recorder.ts";

/** Threads a row of the norm kernels (rms_norm, layer_norm, their override WG) may use. */
export const normThreadCounts = [256, 8] as const;
export type NormThreads = typeof normThreadCounts[number];

/**
 * 256 threads a row on a GPU (rows of 3200–12800 in the real model). A CPU adapter (Mesa's llvmpipe) runs a
 * workgroup as 8-lane vectors and switches between them at every barrier, so there one vector a row is
 * fastest: rms_norm over the tiny ViT's [1025, 64] took 33 ms a call with 256 threads, 5 with 8.
 */
export function normThreads(r: Recorder): NormThreads {
  return r.fallbackAdapter ? 8 : 256;
}
