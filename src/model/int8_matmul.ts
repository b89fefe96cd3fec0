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
 *   the fastest time to first token with weight-only decode.
 */
export type Int8Matmul = "weight-only" | "llm-int8" | "llm-int8-prefill";

/** A mode with the outlier threshold its LLM.int8 passes use (the checkpoint's `llm_int8_threshold`). */
export interface Int8MatmulSetting {
  readonly mode: Int8Matmul;
  readonly threshold: number;
}

/** The default setting: weight-only (the threshold is then unused). */
export const weightOnly: Int8MatmulSetting = { mode: "weight-only", threshold: llmInt8Threshold };

export const int8Matmuls: readonly Int8Matmul[] = ["weight-only", "llm-int8", "llm-int8-prefill"];

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

/** Whether decode steps and chunks of at most 8 rows run LLM.int8 in this mode. */
export function llmInt8ForFew(mode: Int8Matmul): boolean {
  return mode === "llm-int8";
}
