import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

export interface SamplingOptions {
  temperature: number; // > 0 (greedy decoding uses `argmax` instead)
  topK: number; // 0 = off
  topP: number; // in (0, 1]; 1 = off
  seed: number; // u32: same seed, same tokens on any device
  step: number; // u32 generation step (counter for the RNG)
  /**
   * [B, 2] u32: a seed and a step offset per row, for rows that are separate requests batched together; row
   * b then draws what it would draw alone (as row 0) with its seed at step `step` + its offset (the steps it
   * made before joining), and `seed` is not used.
   */
  rowSeeds?: Tensor;
}

/**
 * Samples one token per row with HF's warpers temperature → top-k → top-p and a counter-based RNG
 * (kernels/sample_token.wgsl). logits: [B, V] f32, out: [B] i32.
 * DIFF: logits are scaled by f32(1/temperature) (HF divides: ≤ 1 ulp apart), and tokens tied with the
 * top-k / top-p border token are all kept (HF's sort keeps an arbitrary subset of top-p ties).
 */
export function sampleToken(r: Recorder, logits: Tensor, out: Tensor, options: SamplingOptions): void {
  const [B, V] = logits.shape;
  expectTensor("sampleToken logits", logits, "f32", [B, V]);
  expectTensor("sampleToken out", out, "i32", [B]);
  const { temperature, topK, topP, seed, step } = options;
  // The kernel counts tokens in f32 (exact below 2^24).
  if (V >= 2 ** 24) {
    throw new Error(`sampleToken: a vocabulary of ${V} tokens exceeds the 2^24 the kernel counts`);
  }
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    throw new Error(
      `sampleToken: temperature ${temperature} must be a positive number (use argmax for greedy)`,
    );
  }
  if (!(Number.isInteger(topK) && topK >= 0)) {
    throw new Error(`sampleToken: topK ${topK} must be an integer ≥ 0`);
  }
  if (!(topP > 0 && topP <= 1)) throw new Error(`sampleToken: topP ${topP} must be in (0, 1]`);
  for (const [name, v] of [["seed", seed], ["step", step]] as const) {
    if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new Error(`sampleToken: ${name} ${v} must be an integer in [0, 2^32)`);
    }
  }
  if (options.rowSeeds) expectTensor("sampleToken rowSeeds", options.rowSeeds, "u32", [B, 2]);
  const { workgroups, groupsPerRow } = flatGrid(B, 1);
  r.dispatch("sample_token", {
    // Without row seeds the binding is any read-only buffer (never read).
    bindings: [logits, out, options.rowSeeds ?? logits],
    params: [
      V,
      B,
      groupsPerRow,
      topK,
      seed,
      step,
      f32(Math.fround(1 / temperature)),
      f32(topP),
      options.rowSeeds ? 1 : 0,
    ],
    workgroups,
    label: `sample_token ${logits.label}`,
  });
}
