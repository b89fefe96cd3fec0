/**
 * The contract between the HTTP layer (routes/) and the model engine (src/engine/).
 * Routes only see this interface, so tests can pass the real tiny engine or a controlled one.
 */
import type { KvCacheDtype } from "../model/kv_cache.ts";

/** Mirrors the reference `generation_config` dict passed to `model.chat` (HF `generate` kwargs). */
export interface GenerationConfig {
  maxNewTokens: number;
  doSample: boolean;
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  numBeams: number;
  /** Seeded sampling: the same seed gives the same text. */
  seed?: number;
}

export const defaultGenerationConfig: GenerationConfig = {
  maxNewTokens: 512,
  doSample: false,
  temperature: 1.0,
  topP: 1.0,
  topK: 50,
  repetitionPenalty: 1.0,
  numBeams: 1,
};

/** One finished round: the question as the user typed it and the model's response. */
export type HistoryTurn = [question: string, response: string];

/** How the images of a round are placed in the prompt; see `ChatRequest.imageLayout`. */
export const IMAGE_LAYOUTS = ["concat", "numbered"] as const;
export type ImageLayout = typeof IMAGE_LAYOUTS[number];

export interface ChatRequest {
  question: string;
  /** Encoded image files (PNG/JPEG/TIFF) of the FIRST round of the conversation, in order. */
  images: Uint8Array[];
  /** Earlier rounds; the images above belong to the first of them (as in the reference `chat`). */
  history: HistoryTurn[];
  /** Max tiles per image for dynamic tiling, 1–40. */
  maxNum: number;
  /**
   * Which reference call the prompt mirrors (default "concat"):
   *   "concat": `chat()`: the tiles of all images concatenated into ONE `<img>…</img>` block;
   *   "numbered": `multi_image_chat(image_counts=…)`: `<image i> (图i):<img>…</img>` per image, i from 1.
   * Later rounds must pass the layout of the first round, which re-renders the images' block.
   */
  imageLayout?: ImageLayout;
  generation: GenerationConfig;
  /** Aborting stops generation at the next token. */
  signal?: AbortSignal;
  /** Called with each new piece of response text as it is decoded. */
  onText?: (delta: string) => void;
}

export interface ImageSummary {
  grid: [cols: number, rows: number];
  tiles: number;
}

export interface ChatResult {
  response: string;
  /** `history` plus this round. */
  history: HistoryTurn[];
  promptTokenIds: number[];
  /** Generated ids, including the stop token when generation stopped on it. */
  outputTokenIds: number[];
  images: ImageSummary[];
  /** Time from request start to the first generated token, ms. */
  timeToFirstTokenMs: number;
}

/** Where the engine runs (ENGINE_THREAD): a thread of its own, or the caller's. */
export const ENGINE_THREADS = ["worker", "main"] as const;
export type EngineThread = typeof ENGINE_THREADS[number];

export interface BatchItem {
  question: string;
  images: Uint8Array[];
}

export interface ModelInfo {
  id: string;
  /** True for the random-weight test model: its answers are noise. */
  randomWeights: boolean;
  description: string;
  maxContext: number;
  /** How the language model's KV caches store keys and values (KV_CACHE_DTYPE); unset: f32. */
  kvCacheDtype?: KvCacheDtype;
}

/**
 * Prompt ids a piece of a joining round's prompt pass takes, one piece a readback group of the running
 * batch's steps (JOIN_CHUNK_TOKENS; WebGpuEngineOptions.joinChunkTokens); 0: the batch pauses at once and the
 * newcomer's whole pass runs first. Measured against 128 and 256 at the real shapes on an H100 (docs/PERF.md
 * v46, v47, `deno task bench --sections join`): a 7-tile newcomer stalls 4 running rows for 0.29–0.32 s
 * instead of 2.07 s (`llm-int8`; weight-only 0.58–0.60 instead of 4.05), its first token 2.42 s instead of
 * 2.07; 256 stalls them ~0.1 s less and the newcomer waits ~0.4 s more.
 */
export const defaultJoinChunkTokens = 512;

/**
 * GPU bytes of image embeddings kept between requests (GPU_IMAGE_CACHE_BYTES): 7 tiles of InternViT-6B
 * through the projector make 1792 × 6144 f32, 44 MB, so 2 GiB keeps ~48 such images (~8 at max_num 40).
 */
export const defaultKeptImageBytes = 2 * 2 ** 30;

/** Counters of the engine's work since it loaded (read by /metrics). */
export interface EngineStats {
  /** Chat rounds generated as rows of a batch with others (MAX_BATCH). */
  batchedRounds: number;
  /** Times a running generation paused so that waiting rounds could join it. */
  joins: number;
  /** New conversations whose prompt pass started in pieces beside a running batch (JOIN_CHUNK_TOKENS). */
  interleavedJoins: number;
  /** Rounds that continued a conversation kept on the GPU, and rounds that found none to continue. */
  keptHits: number;
  keptMisses: number;
  /** Requests whose images were prepared while they waited, and then used. */
  earlyImageHits: number;
  /**
   * New conversations that started from a copy of what a kept conversation shares with them: its image block
   * (same pictures), or ≥ 16 text ids.
   */
  keptPrefixCopies: number;
  /** Rounds whose image embeddings were kept from an earlier request, and rounds that encoded theirs. */
  keptImageHits: number;
  keptImageMisses: number;
}

/** The counters of an engine that has done nothing yet. */
export const noEngineStats: Readonly<EngineStats> = {
  batchedRounds: 0,
  joins: 0,
  interleavedJoins: 0,
  keptHits: 0,
  keptMisses: 0,
  earlyImageHits: 0,
  keptPrefixCopies: 0,
  keptImageHits: 0,
  keptImageMisses: 0,
};

export interface ChatEngine {
  readonly modelInfo: ModelInfo;
  /**
   * Why the engine can no longer answer (e.g. the GPU device was lost), or null while it can.
   * /health then reports the failure and requests get 503 instead of a 500 each.
   */
  readonly fault?: string | null;
  /**
   * Optional: starts preparing a request's images (decoding, tiling) before its turn, while an earlier
   * request holds the GPU; `chat` / `batchChat` given the same array, maxNum and parameter name ("images",
   * or "items[i].images" for batchChat's item i) then use that work, errors included. Returns a function
   * that drops the work if it was not used; call it when the request ends.
   */
  startImagePreparation?(images: Uint8Array[], maxNum: number, param?: string): () => void;
  /** Optional: counters of the engine's work, for /metrics. */
  stats?(): EngineStats;
  /** Optional: releases the engine (its thread, its GPU device) once the server has stopped. */
  close?(): Promise<void>;
  /** Throws InputError (src/errors.ts) for client mistakes: undecodable image, too many pixels, prompt too long. */
  chat(req: ChatRequest): Promise<ChatResult>;
  /** The reference `batch_chat`: each result equals what the item would get alone. */
  batchChat(
    items: BatchItem[],
    maxNum: number,
    generation: GenerationConfig,
    signal?: AbortSignal,
  ): Promise<ChatResult[]>;
}
