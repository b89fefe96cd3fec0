/**
 * Server settings from environment variables. Every variable is optional; the defaults serve the tiny
 * random-weight fixture on 127.0.0.1:8000 with a local KV file. README "Configuration" lists them all.
 */
import { z } from "zod";
import { type Int8Matmul, int8Matmuls } from "../model/int8_matmul.ts";
import { type KvCacheDtype, kvCacheDtypes } from "../model/kv_cache.ts";
import { defaultVisionScratchBytes } from "../model/vision_scratch_pool.ts";
import { type ImageResize, imageResizes } from "../model/gpu_tiling.ts";
import {
  defaultJoinChunkTokens,
  defaultKeptImageBytes,
  ENGINE_THREADS,
  type EngineThread,
} from "../engine/types.ts";

export interface Settings {
  /** HF model directory; null serves the random-weight tiny fixture. */
  modelDir: string | null;
  /** True when modelDir is the tiny fixture (no MODEL_DIR given): answers are noise. */
  randomWeights: boolean;
  host: string;
  port: number;
  /** Local SQLite-backed KV file; ignored when kvUrl is set. */
  kvPath: string;
  /** Remote KV (`Deno.openKv(url)`) shared by several instances; token from DENO_KV_ACCESS_TOKEN. */
  kvUrl: string | null;
  /** Bearer token every route but /health requires; null disables the check. */
  apiKey: string | null;
  maxBodyBytes: number;
  maxImageBytes: number;
  /** Per image; checked from the PNG/JPEG header before queueing, and meant to be passed to the engine. */
  maxImagePixels: number;
  maxImagesPerRequest: number;
  /** Requests that may wait for the engine besides the one running; more get 503 + Retry-After. */
  queueSize: number;
  sessionTtlSeconds: number;
  defaultMaxNum: number;
  /** Upper bound of max_new_tokens a request may ask for. */
  maxNewTokensLimit: number;
  maxBatchItems: number;
  maxQuestionChars: number;
  /** GPU memory for KV caches kept between rounds so follow-ups skip the vision pass and the old prompt. */
  gpuKvCacheBytes: number;
  gpuImageCacheBytes: number;
  /** GPU memory for the vision encoder's scratch kept between image requests, so they skip allocating it. */
  visionScratchBytes: number;
  /** How int8 linears multiply: exact weight-only (default) or bitsandbytes' LLM.int8 (src/model/int8_matmul.ts). */
  int8Matmul: Int8Matmul;
  /** How the language model's KV caches store keys and values (KV_CACHE_DTYPE): "f32" or "bf16". */
  kvCacheDtype: KvCacheDtype;
  /** Worker threads for the images' bicubic resizes; 0 = on the serving thread; null = one per core, ≤ 8. */
  imageWorkers: number | null;
  /** Where the dynamic tiling's resizes run (IMAGE_RESIZE): "gpu" or "cpu". */
  imageResize: ImageResize;
  /** Where the engine runs (ENGINE_THREAD): "worker" (its own thread) or "main" (the serving thread). */
  engineThread: EngineThread;
  /** Requests the engine takes at once; chat rounds among them that wait together run as one batch (MAX_BATCH). */
  maxBatch: number;
  /**
   * Prompt ids a new conversation joining a running batch runs between two of its steps (JOIN_CHUNK_TOKENS;
   * 0: the batch pauses for the newcomer's whole prompt pass).
   */
  joinChunkTokens: number;
}

export const TINY_MODEL_DIR = "tests/fixtures/tiny-internvl/model";

const positiveInt = (name: string, fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().optional().transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max) {
      ctx.addIssue({ code: "custom", message: `${name} must be an integer from 1 to ${max}; got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

const nonNegativeInt = (name: string, fallback: number) =>
  z.string().optional().transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === "") return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 0) {
      ctx.addIssue({ code: "custom", message: `${name} must be an integer ≥ 0; got "${raw}"` });
      return z.NEVER;
    }
    return value;
  });

/** One of `values` (trimmed; unset or empty: the first). */
const oneOf = <T extends string>(name: string, values: readonly T[]) =>
  z.string().optional().transform((raw, ctx) => {
    const v = raw?.trim() || values[0];
    if (!(values as readonly string[]).includes(v)) {
      ctx.addIssue({ code: "custom", message: `${name} must be one of ${values.join(", ")} (got "${raw}")` });
      return z.NEVER;
    }
    return v as T;
  });

const optionalString = z.string().optional().transform((raw) => (raw?.trim() ? raw.trim() : null));

const EnvSchema = z.object({
  MODEL_DIR: optionalString,
  HOST: optionalString,
  PORT: z.string().optional().transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === "") return 8000;
    const value = Number(raw);
    // Port 0 asks the OS for a free port (tests, several instances on one host).
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      ctx.addIssue({ code: "custom", message: `PORT must be an integer from 0 to 65535; got "${raw}"` });
      return z.NEVER;
    }
    return value;
  }),
  KV_PATH: optionalString,
  KV_URL: optionalString,
  INTERNVL_API_KEY: optionalString,
  MAX_BODY_BYTES: positiveInt("MAX_BODY_BYTES", 64 * 1024 * 1024),
  MAX_IMAGE_BYTES: positiveInt("MAX_IMAGE_BYTES", 20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: positiveInt("MAX_IMAGE_PIXELS", 50_000_000),
  MAX_IMAGES: positiveInt("MAX_IMAGES", 8),
  QUEUE_SIZE: positiveInt("QUEUE_SIZE", 16),
  SESSION_TTL_SECONDS: positiveInt("SESSION_TTL_SECONDS", 24 * 3600),
  DEFAULT_MAX_NUM: positiveInt("DEFAULT_MAX_NUM", 6, 40),
  MAX_NEW_TOKENS_LIMIT: positiveInt("MAX_NEW_TOKENS_LIMIT", 4096),
  MAX_BATCH_ITEMS: positiveInt("MAX_BATCH_ITEMS", 16),
  MAX_QUESTION_CHARS: positiveInt("MAX_QUESTION_CHARS", 32_000),
  GPU_KV_CACHE_BYTES: nonNegativeInt("GPU_KV_CACHE_BYTES", 8 * 2 ** 30),
  GPU_IMAGE_CACHE_BYTES: nonNegativeInt("GPU_IMAGE_CACHE_BYTES", defaultKeptImageBytes),
  VISION_SCRATCH_BYTES: nonNegativeInt("VISION_SCRATCH_BYTES", defaultVisionScratchBytes),
  IMAGE_WORKERS: nonNegativeInt("IMAGE_WORKERS", -1),
  IMAGE_RESIZE: oneOf<ImageResize>("IMAGE_RESIZE", imageResizes),
  INT8_MATMUL: oneOf<Int8Matmul>("INT8_MATMUL", int8Matmuls),
  KV_CACHE_DTYPE: oneOf<KvCacheDtype>("KV_CACHE_DTYPE", kvCacheDtypes),
  ENGINE_THREAD: oneOf<EngineThread>("ENGINE_THREAD", ENGINE_THREADS),
  MAX_BATCH: positiveInt("MAX_BATCH", 8, 64),
  JOIN_CHUNK_TOKENS: nonNegativeInt("JOIN_CHUNK_TOKENS", defaultJoinChunkTokens),
});

/** Reads settings from an env record (pass `Deno.env.toObject()`); throws Error listing every bad variable. */
export function loadSettings(env: Record<string, string | undefined>): Settings {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => issue.message);
    throw new Error(`Invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const e = parsed.data;
  return {
    modelDir: e.MODEL_DIR,
    randomWeights: e.MODEL_DIR === null,
    host: e.HOST ?? "127.0.0.1",
    port: e.PORT,
    kvPath: e.KV_PATH ?? "sessions.kv",
    kvUrl: e.KV_URL,
    apiKey: e.INTERNVL_API_KEY,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxImageBytes: e.MAX_IMAGE_BYTES,
    maxImagePixels: e.MAX_IMAGE_PIXELS,
    maxImagesPerRequest: e.MAX_IMAGES,
    queueSize: e.QUEUE_SIZE,
    sessionTtlSeconds: e.SESSION_TTL_SECONDS,
    defaultMaxNum: e.DEFAULT_MAX_NUM,
    maxNewTokensLimit: e.MAX_NEW_TOKENS_LIMIT,
    maxBatchItems: e.MAX_BATCH_ITEMS,
    maxQuestionChars: e.MAX_QUESTION_CHARS,
    gpuKvCacheBytes: e.GPU_KV_CACHE_BYTES,
    gpuImageCacheBytes: e.GPU_IMAGE_CACHE_BYTES,
    visionScratchBytes: e.VISION_SCRATCH_BYTES,
    int8Matmul: e.INT8_MATMUL,
    kvCacheDtype: e.KV_CACHE_DTYPE,
    imageWorkers: e.IMAGE_WORKERS < 0 ? null : e.IMAGE_WORKERS,
    imageResize: e.IMAGE_RESIZE,
    engineThread: e.ENGINE_THREAD,
    maxBatch: e.MAX_BATCH,
    joinChunkTokens: e.JOIN_CHUNK_TOKENS,
  };
}

/** Settings for tests and embedding: the defaults with some fields replaced. */
export function defaultSettings(overrides: Partial<Settings> = {}): Settings {
  return { ...loadSettings({}), ...overrides };
}
