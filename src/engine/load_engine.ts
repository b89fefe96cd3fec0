import type { ChatEngine } from "./types.ts";

export interface LoadEngineOptions {
  /** A model directory in the HF layout of OpenGVLab/InternVL-Chat-V1-5-Int8 (or the tiny fixture). */
  modelDir: string;
  /** True when modelDir is the random-weight tiny test model. */
  randomWeights?: boolean;
  /** Loading progress, 0..1, for a progress bar. */
  onProgress?: (fraction: number, what: string) => void;
}

/** Loads config, tokenizer and weights onto the GPU and returns the engine. */
export function loadEngine(_options: LoadEngineOptions): Promise<ChatEngine> {
  // Replaced by the WebGPU engine (issue 3); routes are built against ChatEngine meanwhile.
  return Promise.reject(new Error("The WebGPU engine is not wired in yet"));
}
