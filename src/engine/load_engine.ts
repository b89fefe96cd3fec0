import type { ChatEngine, EngineThread } from "./types.ts";
import { WebGpuEngine, type WebGpuEngineOptions } from "./webgpu_engine.ts";
import { WorkerEngine } from "./worker_engine.ts";

/** WebGpuEngine's options, and the thread the engine runs on. */
export interface LoadEngineOptions extends WebGpuEngineOptions {
  /**
   * "worker": the engine on a thread of its own (src/engine/worker_engine.ts), so the GPU's blocking waits
   * never stop the caller's event loop; "main" (default here; `deno task serve` defaults to "worker"): on
   * the calling thread.
   */
  thread?: EngineThread;
}

/** Loads config, tokenizer and weights onto the GPU and returns the engine. */
export function loadEngine(options: LoadEngineOptions): Promise<ChatEngine> {
  if (options.thread === "worker") return WorkerEngine.load(options);
  return WebGpuEngine.load(options);
}
