/**
 * How the int8 linear layers multiply (`INT8_MATMUL`):
 * - `weight-only` (default): the int8 weights are widened to f32 (× SCB/127) and multiply f32 activations —
 *   the dequantized model exactly, the numerics of the reference goldens;
 * - `llm-int8`: bitsandbytes' LLM.int8 as the Python Int8 checkpoint runs it (MatMul8bitLt, threshold 6.0):
 *   each row of activations rounded to int8 on its own scale, columns holding any |x| ≥ 6 kept in f32, the
 *   int8 × int8 products through dot4I8Packed. Faster where the GPU is compute-bound (several tokens).
 */
export type Int8Matmul = "weight-only" | "llm-int8";

export const int8Matmuls: readonly Int8Matmul[] = ["weight-only", "llm-int8"];
