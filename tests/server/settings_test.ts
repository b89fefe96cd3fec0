import assert from "node:assert/strict";
import { loadSettings, TINY_MODEL_DIR } from "../../src/server/settings.ts";

Deno.test("loadSettings defaults serve the random-weight fixture on 127.0.0.1:8000", () => {
  const s = loadSettings({});
  assert.equal(s.host, "127.0.0.1");
  assert.equal(s.port, 8000);
  assert.equal(s.modelDir, null);
  assert.equal(s.randomWeights, true);
  assert.equal(s.apiKey, null);
  assert.equal(s.defaultMaxNum, 6);
  assert.equal(s.kvUrl, null);
  assert.equal(s.visionScratchBytes, 4294967296);
  assert.equal(s.int8Matmul, "weight-only");
  assert.equal(s.kvCacheDtype, "f32");
  assert.equal(s.imageWorkers, null, "unset: the engine picks one worker per core");
  assert.equal(s.imageResize, "gpu");
  assert.equal(s.engineThread, "worker", "the engine's blocking GPU waits stay off the serving thread");
  assert.equal(s.maxBatch, 8);
  assert.equal(s.joinChunkTokens, 512, "a new conversation's prompt pass runs in pieces beside a batch");
  assert.equal(s.gpuImageCacheBytes, 2 * 2 ** 30, "image embeddings kept between requests");
  assert.ok(TINY_MODEL_DIR.endsWith("tiny-internvl/model"));
});

Deno.test("loadSettings reads every variable", () => {
  const s = loadSettings({
    MODEL_DIR: "/models/internvl",
    HOST: "0.0.0.0",
    PORT: "0",
    KV_PATH: "/data/s.kv",
    KV_URL: "https://api.deno.com/databases/x/connect",
    INTERNVL_API_KEY: "k",
    MAX_BODY_BYTES: "1000",
    MAX_IMAGE_BYTES: "900",
    MAX_IMAGE_PIXELS: "100",
    MAX_IMAGES: "2",
    QUEUE_SIZE: "3",
    SESSION_TTL_SECONDS: "60",
    DEFAULT_MAX_NUM: "12",
    MAX_NEW_TOKENS_LIMIT: "64",
    MAX_BATCH_ITEMS: "4",
    MAX_QUESTION_CHARS: "10",
    GPU_KV_CACHE_BYTES: "0",
    GPU_IMAGE_CACHE_BYTES: "1000",
    VISION_SCRATCH_BYTES: "1048576",
    INT8_MATMUL: "llm-int8",
    KV_CACHE_DTYPE: "bf16",
    IMAGE_WORKERS: "0",
    IMAGE_RESIZE: "cpu",
    ENGINE_THREAD: "main",
    MAX_BATCH: "3",
    JOIN_CHUNK_TOKENS: "0",
  });
  assert.deepEqual(s, {
    modelDir: "/models/internvl",
    randomWeights: false,
    host: "0.0.0.0",
    port: 0,
    kvPath: "/data/s.kv",
    kvUrl: "https://api.deno.com/databases/x/connect",
    apiKey: "k",
    maxBodyBytes: 1000,
    maxImageBytes: 900,
    maxImagePixels: 100,
    maxImagesPerRequest: 2,
    queueSize: 3,
    sessionTtlSeconds: 60,
    defaultMaxNum: 12,
    maxNewTokensLimit: 64,
    maxBatchItems: 4,
    maxQuestionChars: 10,
    gpuKvCacheBytes: 0,
    gpuImageCacheBytes: 1000,
    visionScratchBytes: 1048576,
    int8Matmul: "llm-int8",
    kvCacheDtype: "bf16",
    imageWorkers: 0,
    imageResize: "cpu",
    engineThread: "main",
    maxBatch: 3,
    joinChunkTokens: 0,
  });
});

Deno.test("loadSettings names every bad variable", () => {
  assert.throws(
    () =>
      loadSettings({
        PORT: "80a",
        DEFAULT_MAX_NUM: "41",
        QUEUE_SIZE: "-1",
        VISION_SCRATCH_BYTES: "4GiB",
        GPU_IMAGE_CACHE_BYTES: "-2",
        INT8_MATMUL: "int4",
        KV_CACHE_DTYPE: "f16",
        IMAGE_WORKERS: "-1",
        IMAGE_RESIZE: "GPU",
        ENGINE_THREAD: "thread",
        MAX_BATCH: "65",
        JOIN_CHUNK_TOKENS: "64 tokens",
      }),
    (err: Error) =>
      /IMAGE_WORKERS must be an integer ≥ 0; got "-1"/.test(err.message) &&
      /IMAGE_RESIZE must be one of gpu, cpu \(got "GPU"\)/.test(err.message) &&
      /ENGINE_THREAD must be one of worker, main \(got "thread"\)/.test(err.message) &&
      /MAX_BATCH must be an integer from 1 to 64; got "65"/.test(err.message) &&
      /JOIN_CHUNK_TOKENS must be an integer ≥ 0; got "64 tokens"/.test(err.message) &&
      /INT8_MATMUL must be one of weight-only, llm-int8, llm-int8-prefill, llm-int8-batched \(got "int4"\)/
        .test(err.message) &&
      /KV_CACHE_DTYPE must be one of f32, bf16 \(got "f16"\)/.test(err.message) &&
      /PORT must be an integer from 0 to 65535; got "80a"/.test(err.message) &&
      /DEFAULT_MAX_NUM must be an integer from 1 to 40; got "41"/.test(err.message) &&
      /QUEUE_SIZE/.test(err.message) &&
      /VISION_SCRATCH_BYTES must be an integer ≥ 0; got "4GiB"/.test(err.message) &&
      /GPU_IMAGE_CACHE_BYTES must be an integer ≥ 0; got "-2"/.test(err.message),
  );
});
