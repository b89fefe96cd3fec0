import type { Int8Matmul } from "../model/int8_matmul.ts";
import type { ImageResize } from "../model/gpu_tiling.ts";
import type { ChatEngine, EngineThread } from "./types.ts";
import { WebGpuEngine } from "./webgpu_engine.ts";
import { WorkerEngine } from "./worker_engine.ts";

export interface LoadEngineOptions {
  /** A model directory in the HF layout of OpenGVLab/InternVL-Chat-V1-5-Int8 (or the tiny fixture). */
  modelDir: string;
  /** True when modelDir is the random-weight tiny test model. */
  randomWeights?: boolean;
  /** Largest width × height an image header may declare (checked before decoding). */
  maxImagePixels?: number;
  /** GPU bytes of KV caches kept between rounds for follow-up rounds (0 = off). */
  keptKvBytes?: number;
  /** GPU bytes of vision encoder scratch kept between image requests (0 = off); default 4 GiB. */
  visionScratchBytes?: number;
  /** How int8 linears multiply (INT8_MATMUL); default weight-only. */
  int8Matmul?: Int8Matmul;
  /** Threads for the images' CPU work (IMAGE_WORKERS: JPEG rows, CPU resizes; 0 = the serving thread); default one per core, ≤ 8. */
  imageWorkers?: number;
  /** Where the dynamic tiling's resizes run (IMAGE_RESIZE): "gpu" (default) or "cpu". */
  imageResize?: ImageResize;
  /** Most chat rounds run together as one batch when they wait for the GPU together (MAX_BATCH); default 1. */
  maxBatch?: number;
  /**
   * "worker": the engine on a thread of its own (src/engine/worker_engine.ts), so the GPU's blocking waits
   * never stop the caller's event loop; "main" (default here; `deno task serve` defaults to "worker"): on
   * the calling thread.
   */
  thread?: EngineThread;
  /**
   * Build every decode-sized pipeline, a long prompt's and one image tile's at load, so that no request pays
   * shader compilation (default true; scripts/chat.ts, one question, turns it off).
   */
  warmUp?: boolean;
  /** Loading progress, 0..1, for a progress bar. */
  onProgress?: (fraction: number, what: string) => void;
}

/** Loads config, tokenizer and weights onto the GPU and returns the engine. */
export function loadEngine(options: LoadEngineOptions): Promise<ChatEngine> {
  if (options.thread === "worker") return WorkerEngine.load(options);
  return WebGpuEngine.load(options);
}
