import type { LlmInt8Gemm } from "../ops/linear.ts";
import { type LlmInt8Scratch, llmInt8Threshold } from "../ops/llm_int8.ts";

/**
 * How the int8 linear layers multiply (`INT8_MATMUL`):
 * - `weight-only` (default): the int8 weights are widened to f32 (× SCB/127) and multiply f32 activations —
 *   the dequantized model exactly, the numerics of the reference goldens;
 * - `llm-int8`: bitsandbytes' LLM.int8 as the Python Int8 checkpoint runs it (MatMul8bitLt, threshold 6.0):
 *   each row of activations rounded to int8 on its own scale, columns holding any |x| ≥ 6 kept in f32, the
 *   int8 × int8 products through dot4I8Packed. Faster where the GPU is compute-bound (the vision encoder,
 *   prompts), slower for decode steps (two extra passes a layer where the weight stream is the limit);
 * - `llm-int8-prefill`: LLM.int8 for passes of more than 8 rows (vision encoder, projector, prompts; in
 *   the LLM.int8 modes a follow-up round is one such pass, not 8-row chunks), weight-only for decode steps:
 *   the fastest time to first token with weight-only decode;
 * - `llm-int8-batched`: LLM.int8 for every pass of more than two rows (prompts, vision encoder, projector,
 *   decode steps of 3+ rows), weight-only for passes of one or two rows (a lone request's decode steps, a
 *   pair's): each pass on the faster of the two paths, as measured on an H200 (docs/PERF.md v71–v72: one row
 *   7.54 ms weight-only against 8.35 LLM.int8, eight rows 400 against 611 tokens/s; v96: two rows 241 against
 *   229 since weight-only's wo and w2 of 2–6 rows share a multiprocessor three at a time, v95). A row's
 *   numerics then depend on whether it shares its steps, as they do in `llm-int8` (outlier columns of all
 *   rows).
 */
export type Int8Matmul = "weight-only" | "llm-int8" | "llm-int8-prefill" | "llm-int8-batched";

/** A mode with the outlier threshold its LLM.int8 passes use (the checkpoint's `llm_int8_threshold`). */
export interface Int8MatmulSetting {
  readonly mode: Int8Matmul;
  readonly threshold: number;
}

/** The default setting: weight-only (the threshold is then unused). */
export const weightOnly: Int8MatmulSetting = { mode: "weight-only", threshold: llmInt8Threshold };

export const int8Matmuls: readonly Int8Matmul[] = [
  "weight-only",
  "llm-int8",
  "llm-int8-prefill",
  "llm-int8-batched",
];

/** Whether passes of more than 8 rows (GEMMs) run LLM.int8 in this mode. */
export function llmInt8ForMany(mode: Int8Matmul): boolean {
  return mode !== "weight-only";
}

/**
 * What `linear()` needs for the many-row LLM.int8 path in the modes that use it (the scratch, made only
 * then, and the threshold); null in weight-only.
 */
export function llmInt8GemmFor(matmul: Int8MatmulSetting, scratch: () => LlmInt8Scratch): LlmInt8Gemm | null {
  return llmInt8ForMany(matmul.mode) ? { scratch: scratch(), threshold: matmul.threshold } : null;
}

/** Fewest rows of a decode step or chunk that `llm-int8-batched` runs in LLM.int8. */
export const minBatchedLlmInt8Rows = 3;

/** Whether a decode step or chunk of `rows` rows (at most 8 a group) runs LLM.int8 in this mode. */
export function llmInt8ForFew(mode: Int8Matmul, rows: number): boolean {
  return mode === "llm-int8" || (mode === "llm-int8-batched" && rows >= minBatchedLlmInt8Rows);
}
