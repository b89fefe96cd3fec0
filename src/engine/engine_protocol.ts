/**
 * The messages between the serving thread's WorkerEngine (src/engine/worker_engine.ts) and the engine's own
 * thread (src/engine/engine_worker.ts). Everything here survives structured cloning: no functions, no
 * AbortSignal, errors as plain records rebuilt on the other side with their class.
 */
import type { WireError } from "../wire_error.ts";
import type { LoadEngineOptions } from "./load_engine.ts";
import type {
  BatchItem,
  ChatRequest,
  ChatResult,
  EngineStats,
  GenerationConfig,
  ModelInfo,
} from "./types.ts";

/** LoadEngineOptions as the engine's thread gets them (progress comes back as messages). */
export type WorkerLoadOptions = Omit<LoadEngineOptions, "onProgress" | "thread">;

/**
 * A chat request without its callbacks. `prep` names images sent before by a "prepare" message (the engine
 * then finds its early work by that array), in which case `images` is empty.
 */
export interface WireChatRequest extends Omit<ChatRequest, "signal" | "onText"> {
  prep: number | null;
  /** The caller streams: the engine's thread sends "text" messages. */
  streams: boolean;
}

export interface WireBatchItem extends BatchItem {
  prep: number | null;
}

export type ToEngine =
  | { type: "load"; options: WorkerLoadOptions }
  | { type: "chat"; id: number; request: WireChatRequest }
  | { type: "batchChat"; id: number; items: WireBatchItem[]; maxNum: number; generation: GenerationConfig }
  | { type: "prepare"; prep: number; images: Uint8Array[]; maxNum: number; param: string }
  | { type: "drop"; prep: number }
  | { type: "abort"; id: number; reason: WireError }
  | { type: "close" };

/** What the engine's thread knows after each call: its fault and its counters. */
export interface EngineStatus {
  fault: string | null;
  stats: EngineStats;
}

export type FromEngine =
  | { type: "progress"; fraction: number; what: string }
  | { type: "loaded"; modelInfo: ModelInfo; status: EngineStatus }
  | { type: "loadFailed"; error: WireError }
  | { type: "text"; id: number; delta: string }
  | { type: "done"; id: number; result: ChatResult | ChatResult[]; status: EngineStatus }
  | { type: "failed"; id: number; error: WireError; status: EngineStatus }
  | { type: "status"; status: EngineStatus }
  | { type: "closed" };
