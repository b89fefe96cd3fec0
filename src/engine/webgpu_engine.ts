import { createHash } from "node:crypto";
import { InputError } from "../errors.ts";
import { Gpu } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { planImageTiles, preprocessImage } from "../image/pixel_values.ts";
import { decodeImage, decodesOnWorkers } from "../image/decode_image.ts";
import { hasThumbnail } from "../image/dynamic_tiling.ts";
import { type DecodedImage, decodedImageTiles, type ImageResize } from "../model/gpu_tiling.ts";
import { defaultImageWorkers, ImageWorkers } from "../image/image_workers.ts";
import { checkpointSource, InternVLModel } from "../model/internvl.ts";
import type { LmRunner } from "../model/lm_runner.ts";
import type { Int8Matmul } from "../model/int8_matmul.ts";
import type { KvCacheDtype } from "../model/kv_cache.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { loadModelConfig, type ModelConfig } from "../weights/config.ts";
import type { ChatTokenizer } from "../tokenizer/chat_tokenizer.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";
import { ResponseStream } from "../tokenizer/response_stream.ts";
import { buildBatchPromptIds, buildChatPromptIds, leftPadded } from "../tokenizer/chat_template.ts";
import { generate } from "./generate.ts";
import { warmUpEngine } from "./warm_up.ts";
import { JoiningPrefill } from "./joining_prefill.ts";
import { type ImagePieces, readyImagePieces } from "../model/image_encoding.ts";
import { KvPrefixCache } from "./kv_prefix_cache.ts";
import { ImageEmbeddingCache } from "./image_embedding_cache.ts";
import { beamSearch } from "./beam_search.ts";
import type {
  BatchItem,
  ChatEngine,
  ChatRequest,
  ChatResult,
  EngineStats,
  GenerationConfig,
  ImageSummary,
  ModelInfo,
} from "./types.ts";
import { defaultJoinChunkTokens, defaultKeptImageBytes } from "./types.ts";
import type { JoinImages } from "./joining_prefill.ts";

export interface WebGpuEngineOptions {
  /** A model directory in the HF layout of OpenGVLab/InternVL-Chat-V1-5-Int8 (or the tiny fixture). */
  modelDir: string;
  /** True when modelDir is the random-weight tiny test model. */
  randomWeights?: boolean;
  /** Largest width × height an image header may declare (checked before decoding). */
  maxImagePixels?: number;
  /** GPU bytes of KV caches kept between rounds for follow-ups (0 turns reuse off); default 8 GiB. */
  keptKvBytes?: number;
  /**
   * GPU bytes of image embeddings kept between requests (GPU_IMAGE_CACHE_BYTES, 0 turns it off): a request
   * whose images were encoded before skips decoding them and the vision encoder; default 2 GiB.
   */
  keptImageBytes?: number;
  /** GPU bytes of vision encoder scratch kept between image requests (0 = off); default 4 GiB. */
  visionScratchBytes?: number;
  /** How int8 linears multiply (INT8_MATMUL); default weight-only. */
  int8Matmul?: Int8Matmul;
  /** How the language model's KV caches store keys and values (KV_CACHE_DTYPE); default f32. */
  kvCacheDtype?: KvCacheDtype;
  /** Extra positions a new conversation's cache gets for its follow-up rounds; default 1024. */
  followupRoom?: number;
  /**
   * Worker threads for the images' CPU work (IMAGE_WORKERS): a JPEG's pixel reconstruction in bands of rows,
   * and with IMAGE_RESIZE=cpu the bicubic resizes; 0 keeps it on the calling thread. Default: one per core,
   * at most 8 (src/image/image_workers.ts).
   */
  imageWorkers?: number;
  /** Where the dynamic tiling's resizes run (IMAGE_RESIZE); default "gpu". */
  imageResize?: ImageResize;
  /**
   * Most chat rounds (greedy or sampled, one beam) generated together as one batch, those waiting and those
   * joining a running one (MAX_BATCH); default 1: one round at a time.
   */
  maxBatch?: number;
  /**
   * A new conversation joining a running batch runs its prompt pass in pieces between the batch's steps,
   * this many prompt ids a piece (its image encoding in pieces of about as much work), so the batch's rows go
   * on making tokens meanwhile; the batch pauses for it only once that pass is done. Default
   * defaultJoinChunkTokens (512); 0: the batch pauses at once and the newcomer's whole prompt pass runs alone
   * first.
   */
  joinChunkTokens?: number;
  /**
   * Build every decode-sized pipeline, a long prompt's and one image tile's, and a 7-tile vision scratch at
   * load, so that no request pays shader compilation (default true). scripts/chat.ts, which asks one question,
   * turns it off: it compiles only the pipelines that question runs.
   */
  warmUp?: boolean;
  /** Loading progress, 0..1, for a progress bar. */
  onProgress?: (fraction: number, what: string) => void;
}

/** A chat round waiting for the GPU, with its caller's promise. */
interface WaitingRound {
  req: ChatRequest;
  started: number;
  resolve: (result: ChatResult) => void;
  reject: (err: unknown) => void;
  /** A batch row that a pause left unfinished (see runRounds), with what it had. */
  continued?: Continued;
  /** Counted in batchedRounds already. */
  counted?: boolean;
  /** Its prompt, planned already where a join decision paused the batch for it (startJoining). */
  planned?: RoundPlan;
}

/** What a row unfinished at a pause carries to the batch that continues it. */
interface Continued {
  runner: LmRunner; // its cache: the prompt and its answer but the last id
  before: number[]; // its answer so far
  plan: RoundPlan; // the round's own prompt
  imageKey: string;
  stream: ResponseStream;
  firstAt: number;
}

/** A waiting round whose prompt pass runs beside a running batch (see runRounds). */
interface Joining {
  w: WaitingRound;
  plan: RoundPlan;
  imageKey: string;
  prefill: JoiningPrefill;
}

/** What a round's prompt is, before any image is decoded. */
interface RoundPlan {
  images: ImageSummary[];
  promptIds: number[];
}

/** A waiting round planned: its images' identity, and how many of its prompt ids a kept cache holds. */
type PlannedRound = WaitingRound & { plan: RoundPlan; imageKey: string; prefix: number };

/**
 * Requests whose images may be prepared ahead of their turn at once: the next ones in the queue are what
 * matters, and each holds its decoded images until it runs.
 */
const maxEarlyRequests = 2;

/**
 * The shortest text prefix a new conversation without images copies from a kept one (sharedPrefix): two
 * decode-sized chunks. A short weight-only prompt runs in chunks of 8 ids at ~20 ms each (H200: a pass of 16
 * ids 56 ms to its first token, 32 ids 93, 64 ids 176; PERF.md v63), so the fixed system prompt that every
 * conversation starts with (~26 ids with the real tokenizer) is worth a copy; LLM.int8's one pass costs
 * ~70 ms at any length up to 64 ids and gains little from it.
 */
const minCopiedTextTokens = 16;

interface EarlyImages {
  maxNum: number;
  param: string;
  prepared: Promise<PreparedImages>;
}

/** A request's images, ready for the vision encoder: pixel values (IMAGE_RESIZE=cpu) or decoded images. */
interface PreparedImages {
  input: Float32Array | DecodedImage[] | null;
  tiles: number;
  summaries: ImageSummary[];
}

/** A batch row's images: embeddings kept from an earlier request (a copy the row owns), or images to encode. */
type RowImages = { kept: Tensor; tiles: number } | { prepared: PreparedImages; tiles: number };

/**
 * The model behind the chat API: tokenizer + image preprocessing + the WebGPU InternVL model.
 * GPU work runs one job at a time (requests queue in src/engine/scheduler.ts before reaching here); with
 * maxBatch > 1 a job is a batch of chat rounds, which rounds arriving meanwhile join (runRounds).
 */
export class WebGpuEngine implements ChatEngine {
  private busy: Promise<unknown> = Promise.resolve();
  /** Conversations whose KV caches stay on the GPU for their next round. */
  readonly kept: KvPrefixCache;
  /** Image embeddings of recent requests, by their images' identity (imageIdentity). */
  readonly keptImages: ImageEmbeddingCache;
  /** Where JPEG rows are reconstructed and (IMAGE_RESIZE=cpu) images resized; null: on this thread. */
  private readonly imageWorkers: ImageWorkers | null;
  /**
   * Images of requests still waiting for the GPU, being prepared already (startImagePreparation), by the
   * request's image array. Taken by the request's chat / batchChat, or dropped when it ends.
   */
  private readonly early = new Map<Uint8Array[], EarlyImages>();
  /** Requests whose images were prepared before their turn and then used (tests and metrics). */
  earlyImageHits = 0;
  /** Rounds waiting to run together (see runWaiting), and whether a job to run them is queued. */
  private readonly waiting: WaitingRound[] = [];
  private batchQueued = false;
  /** Rounds that ran as rows of a batch with others (tests and metrics). */
  batchedRounds = 0;
  /** Times a running batch paused so that waiting rounds could join it (tests and metrics). */
  joins = 0;
  /**
   * Rounds whose prompt pass started in pieces beside a running batch (tests and metrics), including those
   * that then failed alone or finished after the batch had ended.
   */
  interleavedJoins = 0;

  /** Image preparations started ahead of their requests and not yet taken or dropped. */
  get earlyImagesHeld(): number {
    return this.early.size;
  }

  private constructor(
    readonly modelInfo: ModelInfo,
    readonly config: ModelConfig,
    readonly tokenizer: ChatTokenizer,
    readonly model: InternVLModel,
    private readonly maxImagePixels: number,
    keptKvBytes: number,
    keptImageBytes: number,
    private readonly followupRoom: number,
    imageWorkers: number,
    private readonly imageResize: ImageResize,
    /** Most chat rounds generated together (MAX_BATCH); 1: one at a time. */
    readonly maxBatch: number,
    /** WebGpuEngineOptions.joinChunkTokens; may change between requests (scripts/bench_join.ts). */
    public joinChunkTokens: number,
  ) {
    if (!(Number.isInteger(joinChunkTokens) && joinChunkTokens >= 0)) {
      throw new Error(`joinChunkTokens ${joinChunkTokens} must be a whole number ≥ 0`);
    }
    this.kept = new KvPrefixCache(keptKvBytes);
    this.keptImages = new ImageEmbeddingCache(model.gpu, keptImageBytes);
    this.imageWorkers = imageWorkers > 0 ? new ImageWorkers(imageWorkers) : null;
  }

  static async load(options: WebGpuEngineOptions): Promise<WebGpuEngine> {
    const config = await loadModelConfig(options.modelDir);
    const tokenizer = await loadTokenizer(options.modelDir);
    const gpu = await Gpu.create();
    const checkpoint = await openCheckpoint(options.modelDir);
    let model: InternVLModel;
    try {
      model = await InternVLModel.load(
        gpu,
        config,
        checkpointSource(checkpoint),
        options.onProgress,
        options.int8Matmul,
        options.visionScratchBytes,
        options.kvCacheDtype,
      );
    } finally {
      await checkpoint.close();
    }
    if (options.warmUp ?? true) {
      options.onProgress?.(0.97, "building decode pipelines, one short generation");
      await warmUpEngine(model);
    }
    options.onProgress?.(1, "ready");
    // The directory's name is the model id (InternVL-Chat-V1-5-Int8 for a hub download); the fixture's
    // weights live in ".../tiny-internvl/model", so a folder called "model" takes its parent's name.
    const parts = options.modelDir.replace(/\/+$/, "").split("/");
    const name = (parts.at(-1) === "model" ? parts.at(-2) : parts.at(-1)) || "internvl";
    const info: ModelInfo = {
      id: name,
      randomWeights: options.randomWeights ?? false,
      description: options.randomWeights
        ? "Tiny random-weight InternVL test model: its answers are noise (set MODEL_DIR for the real model)"
        : `InternVL-Chat-V1.5 from ${options.modelDir} on ${gpu.adapterDescription}`,
      maxContext: config.llm.maxPositionEmbeddings,
      kvCacheDtype: model.kvCacheDtype,
    };
    return new WebGpuEngine(
      info,
      config,
      tokenizer,
      model,
      options.maxImagePixels ?? 50_000_000,
      options.keptKvBytes ?? 8 * 2 ** 30,
      options.keptImageBytes ?? defaultKeptImageBytes,
      options.followupRoom ?? 1024,
      options.imageWorkers ?? defaultImageWorkers(),
      options.imageResize ?? "gpu",
      options.maxBatch ?? 1,
      options.joinChunkTokens ?? defaultJoinChunkTokens,
    );
  }

  stats(): EngineStats {
    return {
      batchedRounds: this.batchedRounds,
      joins: this.joins,
      interleavedJoins: this.interleavedJoins,
      keptHits: this.kept.hits,
      keptMisses: this.kept.misses,
      earlyImageHits: this.earlyImageHits,
      keptPrefixCopies: this.kept.borrowed,
      keptImageHits: this.keptImages.hits,
      keptImageMisses: this.keptImages.misses,
    };
  }

  /** Set once a GPU error was seen: every later result would be suspect, so the server stops serving. */
  get fault(): string | null {
    return this.model.gpu.fault;
  }

  /** Runs GPU jobs one after another, whatever the caller's concurrency. */
  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.busy.then(job, job);
    this.busy = run.catch(() => {});
    return run;
  }

  /** The tiling settings of this model and server, for preprocessImage and planImageTiles. */
  private tiling(maxNum: number) {
    return {
      maxNum,
      maxPixels: this.maxImagePixels,
      imageSize: this.config.tiling.imageSize,
      useThumbnail: this.config.tiling.useThumbnail,
    };
  }

  /**
   * Starts decoding (and with IMAGE_RESIZE=cpu tiling) a request's images now, while an earlier request holds
   * the GPU: chat / batchChat given the same array, max_num and parameter name then take the result instead
   * of preparing the images at their turn. Only with image workers, where decoding leaves this thread free
   * (a ~10 ms stall for a 12-megapixel JPEG; PNG and TIFF: none) instead of holding up the tokens of the
   * request on the GPU; bytes of no format we read wait for their turn, to fail there, and images whose
   * embeddings are kept (GPU_IMAGE_CACHE_BYTES) need none. At most
   * `maxEarlyRequests` are held at once (decoded images take memory: 36 MB for 12 megapixels); past that this
   * does nothing. Returns a function that drops the work if it was not taken (call it when the request ends).
   */
  startImagePreparation(images: Uint8Array[], maxNum: number, param = "images"): () => void {
    if (images.length === 0 || this.early.size >= maxEarlyRequests || this.early.has(images)) return () => {};
    if (!this.imageWorkers || !images.every(decodesOnWorkers)) return () => {};
    // Pictures whose embeddings are kept need no decoding.
    if (this.keptImages.has(imageIdentity(images, maxNum))) return () => {};
    const prepared = this.prepareImages(images, maxNum, param);
    prepared.catch(() => {}); // reported by the request that takes it
    const entry = { maxNum, param, prepared };
    this.early.set(images, entry);
    return () => {
      if (this.early.get(images) === entry) this.early.delete(images);
    };
  }

  /** The images prepared early for this request if they match, else prepared now. */
  private imagesFor(images: Uint8Array[], maxNum: number, param = "images"): Promise<PreparedImages> {
    const e = this.early.get(images);
    if (e && e.maxNum === maxNum && e.param === param) {
      this.early.delete(images);
      this.earlyImageHits++;
      return e.prepared;
    }
    return this.prepareImages(images, maxNum, param);
  }

  private async prepareImages(
    images: Uint8Array[],
    maxNum: number,
    param = "images",
  ): Promise<PreparedImages> {
    const summaries: ImageSummary[] = [];
    if (this.imageResize === "gpu") {
      const decoded: DecodedImage[] = [];
      for (const [i, bytes] of images.entries()) {
        const image = await this.decodeForGpu(bytes, maxNum, param, i);
        decoded.push(image);
        summaries.push({ grid: image.grid, tiles: decodedImageTiles(image) });
      }
      const tiles = summaries.reduce((n, s) => n + s.tiles, 0);
      return { input: tiles === 0 ? null : decoded, tiles, summaries };
    }
    // All images at once: one is decoded on this thread while the workers resize another. The error
    // reported is the first image's in request order, as when they ran one by one.
    const workers = this.imageWorkers ?? undefined;
    const settled = await Promise.allSettled(
      images.map((bytes, i) =>
        namingImage(param, i, () => preprocessImage(bytes, this.tiling(maxNum), workers))
      ),
    );
    const parts: Float32Array[] = [];
    for (const r of settled) {
      if (r.status === "rejected") throw r.reason;
      parts.push(r.value.pixelValues);
      summaries.push({ grid: [r.value.grid[0], r.value.grid[1]], tiles: r.value.tiles });
    }
    const tiles = summaries.reduce((n, s) => n + s.tiles, 0);
    return { input: tiles === 0 ? null : concat(parts), tiles, summaries };
  }

  /** Image `i` of a request decoded for GPU tiling; its grid comes from the header (decoders check the size). */
  private decodeForGpu(bytes: Uint8Array, maxNum: number, param: string, i: number): Promise<DecodedImage> {
    return namingImage(param, i, async () => {
      const { grid } = planImageTiles(bytes, this.tiling(maxNum));
      const image = await decodeImage(
        bytes,
        { maxPixels: this.maxImagePixels },
        this.imageWorkers ?? undefined,
      );
      return { image, grid, thumbnail: hasThumbnail(grid, this.config.tiling.useThumbnail) };
    });
  }

  /**
   * A chat request's image embeddings [tiles·256, D]. With IMAGE_RESIZE=gpu and several images, each goes
   * to the GPU as soon as it is decoded, so one image's vision pass runs while the next one decodes (a
   * 12-megapixel JPEG takes ~0.2 s on the image workers; its vision pass ~1.1 s for 7 tiles on an H100).
   * Images prepared early (startImagePreparation) are all decoded already and go together.
   */
  private async embedImages(images: Uint8Array[], maxNum: number): Promise<Tensor | null> {
    if (this.imageResize !== "gpu" || images.length < 2 || this.early.has(images)) {
      return this.encode(await this.imagesFor(images, maxNum));
    }
    const parts: Tensor[] = [];
    try {
      for (const [i, bytes] of images.entries()) {
        const d = await this.decodeForGpu(bytes, maxNum, "images", i);
        parts.push(this.model.encodeImages([d], decodedImageTiles(d)));
      }
      // One tensor in prompt order; the parts are freed once the copies that read them have run.
      const width = parts[0].shape[1];
      const out = this.model.gpu.createTensor("image_embeds", "f32", [
        parts.reduce((n, p) => n + p.shape[0], 0),
        width,
      ]);
      const r = this.model.gpu.recorder("image embeds");
      parts.reduce((at, p) => (r.copyAfter(p, out.buffer, p.byteLength, at), at + p.byteLength), 0);
      r.submit();
      return out;
    } finally {
      for (const p of parts) p.buffer.destroy();
    }
  }

  /**
   * A round's image embeddings on its own: a copy of those kept for its images (imageKey), else encoded, and
   * then kept.
   */
  private async embeddingsFor(
    images: Uint8Array[],
    maxNum: number,
    imageKey: string,
  ): Promise<Tensor | null> {
    if (images.length === 0) return null;
    const kept = this.keptImages.take(imageKey);
    if (kept) return kept;
    const embeds = await this.embedImages(images, maxNum);
    if (embeds) this.keptImages.keep(imageKey, embeds);
    return embeds;
  }

  /**
   * A batch row's images (null: none): a copy of the embeddings kept for them (imageKey), else decoded for the
   * row's encoder pass.
   */
  private async rowImages(
    images: Uint8Array[],
    maxNum: number,
    imageKey: string,
    summaries: ImageSummary[],
    param?: string,
  ): Promise<RowImages | null> {
    if (images.length === 0) return null;
    const tiles = summaries.reduce((n, s) => n + s.tiles, 0);
    const kept = this.keptImages.take(imageKey);
    return kept ? { kept, tiles } : { prepared: await this.imagesFor(images, maxNum, param), tiles };
  }

  /**
   * Rows' image embeddings, in row order, as one tensor (null: no row has images): the rows' prepared images
   * encoded in one pass — kept under the row's key when that pass holds one row's images alone — and the
   * embeddings found kept copied into place. Takes the kept tensors over (they are freed here or returned).
   */
  private rowEmbeddings(rows: { images: RowImages | null; imageKey: string }[]): Tensor | null {
    const parts = rows.flatMap((r) => r.images && r.images.tiles > 0 ? [{ ...r, images: r.images }] : []);
    const toEncode = parts.flatMap((r) =>
      "prepared" in r.images ? [{ ...r, prepared: r.images.prepared }] : []
    );
    const kept = parts.flatMap((r) => "kept" in r.images ? [r.images.kept] : []);
    let encoded: Tensor | null = null;
    try {
      encoded = this.encode(joinPrepared(toEncode.map((r) => r.prepared)));
      if (encoded && toEncode.length === 1) this.keptImages.keep(toEncode[0].imageKey, encoded);
      if (kept.length === 0) return encoded;
      if (!encoded && kept.length === 1) return kept.pop()!;
      const width = kept[0].shape[1];
      const rowsOf = (r: { images: RowImages }) => r.images.tiles * this.model.tokensPerTile;
      const gpu = this.model.gpu;
      const out = gpu.createTensor("image_embeds", "f32", [parts.reduce((n, r) => n + rowsOf(r), 0), width]);
      const rec = gpu.recorder("image embeds");
      let at = 0, from = 0; // bytes into out, and into encoded
      for (const r of parts) {
        const bytes = rowsOf(r) * width * 4;
        if ("kept" in r.images) rec.copyAfter(r.images.kept, out.buffer, bytes, at);
        else rec.copyAfter(encoded!, out.buffer, bytes, at, (from += bytes) - bytes);
        at += bytes;
      }
      rec.submit();
      return out;
    } finally {
      // Freed once the copies that read them have run; what is returned is not among them.
      for (const t of kept) t.buffer.destroy();
      if (encoded && kept.length > 0) encoded.buffer.destroy();
    }
  }

  private checkLength(promptLength: number, generation: GenerationConfig): void {
    const limit = this.modelInfo.maxContext;
    if (promptLength + generation.maxNewTokens > limit) {
      throw new InputError(
        `The prompt has ${promptLength} tokens and max_new_tokens is ${generation.maxNewTokens}; together they ` +
          `exceed the model's context of ${limit} tokens: use fewer tiles (max_num), fewer rounds or fewer new tokens`,
        { param: "max_new_tokens", code: "context_length_exceeded" },
      );
    }
  }

  private encode(images: PreparedImages): Tensor | null {
    return images.input ? this.model.encodeImages(images.input, images.tiles) : null;
  }

  /** `encode` in pieces of about a joining prompt chunk's arithmetic each (JoiningPrefill). */
  private beginEncoding(images: PreparedImages): ImagePieces | null {
    if (!images.input) return null;
    const layersPerPiece = this.model.visionLayersLike(this.joinChunkTokens, images.tiles);
    return this.model.beginImageEncoding(images.input, images.tiles, { layersPerPiece });
  }

  chat(req: ChatRequest): Promise<ChatResult> {
    const started = performance.now();
    if (this.maxBatch > 1 && req.generation.numBeams === 1) {
      return new Promise<ChatResult>((resolve, reject) => {
        this.waiting.push({ req, started, resolve, reject });
        this.queueWaiting();
      });
    }
    return this.exclusive(() => this.chatAlone(req, started, this.planRound(req)));
  }

  /** A round's image plans (tile counts from the headers) and prompt ids; throws InputError for its mistakes. */
  private planRound(req: ChatRequest): RoundPlan {
    // A follow-up round whose images are already in a kept KV cache never decodes them again.
    const plans = this.planImages(req.images, req.maxNum);
    const promptIds = buildChatPromptIds(this.tokenizer, {
      question: req.question,
      history: req.history,
      imageTileCounts: plans.map((p) => p.tiles),
      // Kept KV caches need no layout key: the layouts give different ids before the first image.
      imageLayout: req.imageLayout ?? "concat",
      numImageToken: this.model.tokensPerTile,
    });
    this.checkLength(promptIds.length, req.generation);
    return { images: plans.map(imageSummary), promptIds };
  }

  /**
   * One round on its own (beam search, or MAX_BATCH 1): continuing a kept conversation when it can, greedy,
   * sampling.
   */
  private async chatAlone(req: ChatRequest, started: number, plan: RoundPlan): Promise<ChatResult> {
    req.signal?.throwIfAborted();
    let firstTokenAt = 0;
    const stream = new ResponseStream(this.tokenizer);
    const onId = (id: number) => {
      if (!firstTokenAt) firstTokenAt = performance.now();
      const delta = stream.push(id);
      if (delta && req.onText) req.onText(delta);
    };
    const outputIds = req.generation.numBeams > 1
      ? await this.beamChat(plan.promptIds, req)
      : await this.greedyOrSampledChat(plan.promptIds, req, onId);
    if (req.generation.numBeams > 1) { for (const id of outputIds) onId(id); }
    const tail = stream.finish();
    if (tail && req.onText) req.onText(tail);
    return this.roundResult(req, plan, outputIds, (firstTokenAt || performance.now()) - started);
  }

  private roundResult(req: ChatRequest, plan: RoundPlan, outputIds: number[], ttftMs: number): ChatResult {
    const response = this.tokenizer.responseFromIds(outputIds);
    return {
      response,
      history: [...req.history, [req.question, response]],
      promptTokenIds: plan.promptIds,
      outputTokenIds: outputIds,
      images: plan.images,
      timeToFirstTokenMs: ttftMs,
    };
  }

  /** Queues one job that takes the waiting rounds, unless one is queued already. */
  private queueWaiting(): void {
    if (this.batchQueued || this.waiting.length === 0) return;
    this.batchQueued = true;
    this.exclusive(() => this.runWaiting()).catch(() => {}); // each round settles its own promise
  }

  /**
   * The rounds (greedy or sampled, one beam) that arrived while the GPU was busy, up to `maxBatch` that
   * decode alike (`batchKey`), as one left-padded batch: the weights stream once a step for all of them
   * (H100, real shapes: 286 tokens/s at 4 rows, 367 at 8, against ~103 for one; PERF.md). Each row stops at
   * its own limit, eos or abort, streams its own text and samples with its own seed. A round that continues
   * a kept conversation brings that cache along (runRounds); a round alone is a batch of one; every row's
   * cache is kept as it ends (keepRow). Rows that a pause left unfinished (runRounds) come first, each with
   * its own cache and one new token: its last.
   */
  private async runWaiting(): Promise<void> {
    this.batchQueued = false;
    const key = batchKey(this.waiting[0].req.generation);
    const taken: WaitingRound[] = [], rest: WaitingRound[] = [];
    for (const w of this.waiting) {
      (taken.length < this.maxBatch && batchKey(w.req.generation) === key ? taken : rest).push(w);
    }
    this.waiting.splice(0, this.waiting.length, ...rest);
    this.queueWaiting();
    const batch: PlannedRound[] = [];
    for (const w of taken) {
      const c = w.continued;
      if (c) {
        // The kept part is all it has but its last id, which is its one new token.
        const promptIds = [...c.plan.promptIds, ...c.before];
        batch.push({
          ...w,
          plan: { ...c.plan, promptIds },
          imageKey: c.imageKey,
          prefix: promptIds.length - 1,
        });
        continue;
      }
      try {
        w.req.signal?.throwIfAborted();
        const plan = w.planned ?? this.planRound(w.req);
        const imageKey = imageIdentity(w.req.images, w.req.maxNum);
        // A round that continues a kept conversation runs only its new tokens; one that shares the image block
        // of another conversation about its pictures, or a long text prefix, starts from a copy of it.
        const shared = this.kept.size === 0
          ? 0
          : this.kept.sharedWith(...this.keptQuery(plan.promptIds, w.req, imageKey)) ||
            this.kept.borrowableWith(...this.borrowQuery(plan.promptIds, w.req, imageKey));
        batch.push({ ...w, plan, imageKey, prefix: Math.min(shared, plan.promptIds.length - 1) });
      } catch (e) {
        w.reject(e);
      }
    }
    // Rounds joining paused rows first run their prompt pass on their own, to their first token, and then
    // join with one new token each like the paused rows: padded to a newcomer's prompt in one pass, every
    // paused row would run that many positions too (7 rows × 1800 wasted at the real shapes, ~7× the pass).
    const newcomers = batch.filter((r) => !r.continued);
    if (newcomers.length > 0 && newcomers.length < batch.length) {
      this.waiting.unshift(...batch.filter((r) => r.continued));
      for (const r of newcomers) await this.runRounds([r], { firstTokenOnly: true });
      this.queueWaiting();
      return;
    }
    // A batch's prompt pass holds its longest new part per row; its cache spans the longest kept part, that
    // and the longest answer, which must fit the model's context.
    const groups = batchGroups(batch.map((r) => r.plan.promptIds.length - r.prefix), this.maxBatchTokens, {
      newTokens: batch.map((r) => newTokensLeft(r)),
      kept: batch.map((r) => r.prefix),
      context: this.modelInfo.maxContext,
    }).map((g) => g.map((i) => batch[i]));
    // A round alone runs as a batch of one too, so that rounds arriving meanwhile can join it.
    for (const group of groups) await this.runRounds(group);
  }

  /**
   * A new runner holding a copy of the positions a kept conversation with the same pictures shares with
   * `promptIds` (borrowQuery: the system prompt and image block at least, or a long text prefix), whatever
   * follows, and how many: a new conversation about pictures seen before then runs only its question, and a
   * text conversation that branches off a kept one (an edited or regenerated earlier message, another
   * question after the same long first message) only what differs. The kept conversation stays kept. Null
   * when none shares enough.
   */
  private sharedPrefix(
    promptIds: number[],
    req: ChatRequest,
    imageKey: string,
  ): { runner: LmRunner; shared: number } | null {
    const found = this.kept.borrow(...this.borrowQuery(promptIds, req, imageKey));
    if (!found) return null;
    // At least one prompt token must run to produce the first logits.
    const shared = Math.min(found.shared, promptIds.length - 1);
    const capacity = this.keptCapacity(promptIds.length, req.generation);
    return { runner: found.runner.extractRow(0, [[0, shared]], capacity), shared };
  }

  /**
   * kept.take's / kept.sharedWith's arguments for a round: its ids, its images, and the positions it needs.
   * Reuse must cover every image position: the kept cache holds their embeddings, the round has none.
   */
  private keptQuery(ids: number[], req: ChatRequest, imageKey: string): [number[], string, number, number] {
    const lastImage = ids.lastIndexOf(this.tokenizer.specialIds.imgContext);
    return [ids, imageKey, lastImage + 1, ids.length + req.generation.maxNewTokens];
  }

  /**
   * kept.borrow's arguments for a new conversation: with images, a prefix holding their whole image block
   * (the round has no embeddings for the positions it would skip); without, at least `minCopiedTextTokens`.
   */
  private borrowQuery(ids: number[], req: ChatRequest, imageKey: string): [number[], string, number] {
    const [, , minShared] = this.keptQuery(ids, req, imageKey);
    return [ids, imageKey, req.images.length > 0 ? minShared : minCopiedTextTokens];
  }

  /** Positions a conversation's runner gets: its prompt, its answer and room for its follow-up rounds. */
  private keptCapacity(promptLength: number, generation: GenerationConfig): number {
    return Math.min(this.modelInfo.maxContext, promptLength + generation.maxNewTokens + this.followupRoom);
  }

  /**
   * Rounds generated together, one row each; see runWaiting. A row that continues a kept conversation gets
   * that cache's shared part copied into its row (`adoptPrefixes`, right-aligned so that every row's new
   * part starts at one cache index) and runs only its new tokens; a new conversation's row starts empty.
   */
  private async runRounds(rounds: PlannedRound[], opts: { firstTokenOnly?: boolean } = {}): Promise<void> {
    const ready: (PlannedRound & { images: RowImages | null; from: LmRunner | null })[] = [];
    for (const r of rounds) {
      if (r.continued) {
        ready.push({ ...r, images: null, from: r.continued.runner });
        continue;
      }
      let from: LmRunner | null = null;
      let prefix = r.prefix;
      if (prefix > 0) {
        const hit = this.kept.take(...this.keptQuery(r.plan.promptIds, r.req, r.imageKey)) ??
          this.sharedPrefix(r.plan.promptIds, r.req, r.imageKey);
        from = hit?.runner ?? null;
        prefix = hit ? Math.min(hit.shared, prefix) : 0;
      }
      try {
        // A continued row's images are in its kept part already; a new one's may have been encoded before.
        const images = prefix === 0
          ? await this.rowImages(r.req.images, r.req.maxNum, r.imageKey, r.plan.images)
          : null;
        ready.push({ ...r, prefix, images, from });
      } catch (e) {
        from?.destroy();
        r.reject(e); // that request's bad image fails it alone
      }
    }
    if (ready.length === 0) return;
    const special = this.tokenizer.specialIds;
    const { inputIds, attentionMask } = leftPadded(
      ready.map((r) => r.plan.promptIds.slice(r.prefix)),
      special.pad,
    );
    const streams = ready.map((r) => r.continued?.stream ?? new ResponseStream(this.tokenizer));
    const firstAt = ready.map((r) => r.continued?.firstAt ?? 0);
    const before = ready.map((r) => r.continued?.before ?? []);
    const rowMax = ready.map((r) => newTokensLeft(r));
    const P = Math.max(...ready.map((r) => r.prefix)), L = inputIds[0].length, maxNew = Math.max(...rowMax);
    // Each row's own prompt (a continued row's plan in the batch also holds its answer so far).
    const plans = ready.map((r) => r.continued?.plan ?? r.plan);
    const imageEmbeds = this.rowEmbeddings(ready);
    const runner = this.model.newRunner(ready.length, P + L + maxNew);
    // Row b holds its kept part at P − prefix … P − 1, its new prompt tokens up to P + L − 1 (left-padded),
    // then its answer, all but the last id (never fed back).
    const segments = (r: PlannedRound, answer: number): [number, number][] => {
      const fresh = r.plan.promptIds.length - r.prefix;
      return [[P - r.prefix, r.prefix], [P + L - fresh, fresh + answer]];
    };
    // A row that ends (eos or its own max_new_tokens) is kept and answered at once, not when the batch's
    // longest row ends: the steps still in flight write only later positions of its row.
    const answered = ready.map(() => false);
    const answer = (b: number, ids: number[]) => {
      const r = ready[b], plan = plans[b];
      const all = [...before[b], ...ids];
      answered[b] = true;
      if (!r.req.signal?.aborted && ids.length > 0) {
        this.keepRow(
          r.imageKey,
          plan.promptIds,
          all,
          r.req.generation,
          runner,
          b,
          segments(r, ids.length - 1),
        );
      }
      const tail = streams[b].finish();
      if (tail) r.req.onText?.(tail);
      r.resolve(this.roundResult(r.req, plan, all, (firstAt[b] || performance.now()) - r.started));
    };
    // Each row's ids of this batch, as they come (what generate() returns at the end).
    const got = ready.map(() => [] as number[]);
    if (ready.length > 1) {
      for (const r of ready) if (!r.counted) this.batchedRounds++, r.counted = true;
    }
    const key = batchKey(ready[0].req.generation);
    // Rounds that arrive meanwhile join at the next step: generation pauses, and the rows not ended go on in
    // the next batch with them (runWaiting), each from its own cache. With joinChunkTokens > 0 a new
    // conversation first runs its prompt pass in pieces between this batch's steps (startJoining), so the rows
    // keep making tokens; the pause comes once that pass is done, and the newcomer goes on like a row paused
    // before its first token.
    // firstTokenOnly: a newcomer's prompt pass alone, paused at once to join the paused rows (runWaiting).
    let joining: Joining | null = null;
    const pause = opts.firstTokenOnly ? () => true : () => {
      if (answered.filter((a) => !a).length >= this.maxBatch) return false;
      if (joining?.prefill.failed) {
        this.failJoining(joining);
        joining = null;
      }
      if (joining) return joining.prefill.ready;
      const i = this.waiting.findIndex((w) => !w.continued && batchKey(w.req.generation) === key);
      if (i < 0) return false;
      const next = this.startJoining(this.waiting[i]);
      if (next === "pause") return true;
      this.waiting.splice(i, 1);
      if (next !== "rejected") joining = next;
      return false;
    };
    try {
      if (P > 0) runner.adoptPrefixes(ready.map((r) => r.from), ready.map((r) => r.prefix));
      await generate(
        this.model,
        { ids: inputIds, mask: attentionMask, imageEmbeds },
        { ...ready[0].req.generation, maxNewTokens: maxNew },
        {
          eosId: special.imEnd,
          imageContextId: special.imgContext,
          runner,
          rowMaxNewTokens: rowMax,
          rowSignals: ready.map((r) => r.req.signal),
          rowSeeds: ready.map((r) => r.req.generation.seed ?? 0),
          rowBefore: before,
          pause,
          between: () => joining?.prefill.step() ?? false,
          prepare: () => joining?.prefill.prepare(),
          onStep: (step) =>
            step.forEach((id, b) => {
              if (id < 0) return;
              firstAt[b] ||= performance.now();
              got[b].push(id);
              const delta = streams[b].push(id);
              if (delta) ready[b].req.onText?.(delta);
              if (id === special.imEnd || got[b].length >= rowMax[b]) answer(b, got[b]);
            }),
        },
      );
      // A paused row goes back to the front of the queue with its cache; an aborted one is answered with
      // what it has.
      const paused: WaitingRound[] = [];
      for (const [b, r] of ready.entries()) {
        if (answered[b]) continue;
        if (r.req.signal?.aborted || got[b].length === 0) {
          answer(b, got[b]);
          continue;
        }
        const all = [...before[b], ...got[b]];
        // Held only until the next batch adopts it: room for what it holds, no more.
        const held = plans[b].promptIds.length + all.length - 1;
        paused.push({
          ...r,
          continued: {
            runner: runner.extractRow(b, segments(r, got[b].length - 1), held),
            before: all,
            plan: plans[b],
            imageKey: r.imageKey,
            stream: streams[b],
            firstAt: firstAt[b],
          },
        });
      }
      if (paused.length > 0 && !opts.firstTokenOnly) this.joins++;
      if (joining) {
        // Ready, or the batch ended first: its prompt pass is finished alone.
        const j: Joining = joining;
        joining = null;
        await j.prefill.finish();
        const row = j.prefill.failed ? null : this.joinedRow(j);
        if (row) paused.push(row);
        else this.failJoining(j);
      }
      if (paused.length > 0) {
        this.waiting.unshift(...paused);
        this.queueWaiting();
      }
    } catch (e) {
      for (const r of ready) r.reject(e);
      if (joining) {
        (joining as Joining).prefill.error ??= e;
        this.failJoining(joining);
      }
      return;
    } finally {
      imageEmbeds?.buffer.destroy();
      runner.destroy();
      for (const r of ready) r.from?.destroy();
    }
  }

  /**
   * A finished row of a batch is kept like a round run alone: its prompt and its answer's fed ids, which
   * stand in the batch's cache at `segments` (cache index, count), copied out without the padding, for its
   * follow-up round.
   */
  private keepRow(
    imageKey: string,
    promptIds: number[],
    answer: number[],
    generation: GenerationConfig,
    runner: LmRunner,
    b: number,
    segments: [number, number][],
  ): void {
    if (this.kept.budgetBytes <= 0) return;
    const row = runner.extractRow(b, segments, this.keptCapacity(promptIds.length, generation));
    this.kept.keep([...promptIds, ...answer.slice(0, -1)], promptIds.length, imageKey, row);
  }

  /**
   * A waiting round's prompt pass started beside the running batch (runRounds), or "pause" where the batch
   * should pause for it at once instead: joins disabled, a round with history, which may continue a kept
   * conversation, or one that would start from a copy of a kept conversation's prefix (its image block, or a
   * long text prefix: sharedPrefix) and has at most one piece (`joinChunkTokens`) left to run, so the batch
   * stalls for no more than a piece either way. "rejected": its prompt could not be planned.
   */
  private startJoining(w: WaitingRound): Joining | "pause" | "rejected" {
    if (this.joinChunkTokens === 0 || w.req.history.length > 0) return "pause";
    let plan: RoundPlan;
    try {
      w.req.signal?.throwIfAborted();
      plan = this.planRound(w.req);
    } catch (e) {
      w.reject(e);
      return "rejected";
    }
    const imageKey = imageIdentity(w.req.images, w.req.maxNum);
    if (this.kept.size > 0) {
      const shared = this.kept.borrowableWith(...this.borrowQuery(plan.promptIds, w.req, imageKey));
      if (shared > 0 && plan.promptIds.length - shared <= this.joinChunkTokens) {
        w.planned = plan;
        return "pause";
      }
    }
    let prefill: JoiningPrefill;
    try {
      // A runner for the whole prompt (a prompt past the model's context fails here, and fails alone).
      prefill = new JoiningPrefill(
        this.model,
        plan.promptIds,
        this.tokenizer.specialIds.imgContext,
        this.joinImages(w.req, imageKey),
        w.req.signal,
        this.joinChunkTokens,
      );
    } catch (e) {
      w.reject(e);
      return "rejected";
    }
    this.interleavedJoins++;
    return { w, plan, imageKey, prefill };
  }

  /**
   * A joining round's images: embeddings kept from before (no piece to run), else decoded now and encoded in
   * pieces, then kept.
   */
  private async joinImages(req: ChatRequest, imageKey: string): Promise<JoinImages> {
    const kept = req.images.length > 0 ? this.keptImages.take(imageKey) : null;
    if (kept) return { begin: () => readyImagePieces(kept), drop: () => kept.buffer.destroy() };
    const prepared = await this.imagesFor(req.images, req.maxNum);
    return {
      begin: () => {
        const pieces = this.beginEncoding(prepared);
        if (!pieces) return null;
        return {
          get done() {
            return pieces.done;
          },
          step: () => pieces.step(),
          take: () => {
            const embeds = pieces.take();
            this.keptImages.keep(imageKey, embeds);
            return embeds;
          },
          destroy: () => pieces.destroy(),
        };
      },
    };
  }

  private failJoining(j: Joining): void {
    j.prefill.destroy();
    j.w.reject(j.prefill.error);
  }

  /** A joined round's prompt pass done: it waits like a row paused before its first token (null: failed). */
  private joinedRow(j: Joining): WaitingRound {
    j.prefill.destroy(true); // its runner goes on as the row's cache
    return {
      ...j.w,
      continued: {
        runner: j.prefill.runner,
        before: [],
        plan: j.plan,
        imageKey: j.imageKey,
        stream: new ResponseStream(this.tokenizer),
        firstAt: 0,
      },
    };
  }

  /** Generation for one conversation, continuing a kept KV cache when the prompt extends one. */
  private async greedyOrSampledChat(
    promptIds: number[],
    req: ChatRequest,
    onId: (id: number) => void,
  ): Promise<number[]> {
    const special = this.tokenizer.specialIds;
    const imageKey = imageIdentity(req.images, req.maxNum);
    const hit = this.kept.take(...this.keptQuery(promptIds, req, imageKey));
    let runner = hit?.runner ?? null;
    let imageEmbeds: Tensor | null = null;
    let suffix = promptIds;
    try {
      if (hit && runner) {
        // At least one prompt token must run to produce the first logits.
        const shared = Math.min(hit.shared, promptIds.length - 1);
        runner.truncate(shared);
        suffix = promptIds.slice(shared);
      } else {
        const copied = this.sharedPrefix(promptIds, req, imageKey);
        if (copied) {
          runner = copied.runner;
          suffix = promptIds.slice(copied.shared);
        } else {
          imageEmbeds = await this.embeddingsFor(req.images, req.maxNum, imageKey);
          runner = this.model.newRunner(1, this.keptCapacity(promptIds.length, req.generation));
        }
      }
      const [out] = await generate(
        this.model,
        { ids: [suffix], mask: [suffix.map(() => 1)], imageEmbeds },
        req.generation,
        {
          eosId: special.imEnd,
          imageContextId: special.imgContext,
          signal: req.signal,
          onStep: (step) => step[0] >= 0 && onId(step[0]),
          runner,
        },
      );
      // The last chosen id was never fed back, so the cache holds the prompt and all but the last output.
      this.kept.keep([...promptIds, ...out.slice(0, -1)], promptIds.length, imageKey, runner);
      runner = null;
      return out;
    } finally {
      imageEmbeds?.buffer.destroy();
      runner?.destroy();
    }
  }

  private async beamChat(promptIds: number[], req: ChatRequest): Promise<number[]> {
    const imageKey = imageIdentity(req.images, req.maxNum);
    const imageEmbeds = await this.embeddingsFor(req.images, req.maxNum, imageKey);
    try {
      const [out] = await this.runGeneration([promptIds], [promptIds.map(() => 1)], imageEmbeds, req);
      return out;
    } finally {
      imageEmbeds?.buffer.destroy();
    }
  }

  private planImages(images: Uint8Array[], maxNum: number, param = "images") {
    return images.map((bytes, i) => namingImage(param, i, () => planImageTiles(bytes, this.tiling(maxNum))));
  }

  private async runGeneration(
    ids: number[][],
    mask: number[][],
    imageEmbeds: Tensor | null,
    opts: { generation: GenerationConfig; signal?: AbortSignal },
    onFirstRowId?: (id: number) => void,
  ): Promise<number[][]> {
    const special = this.tokenizer.specialIds;
    if (opts.generation.numBeams > 1) {
      return await beamSearch(this.model, { ids, mask, imageEmbeds }, opts.generation, {
        eosId: special.imEnd,
        imageContextId: special.imgContext,
        signal: opts.signal,
      });
    }
    return await generate(this.model, { ids, mask, imageEmbeds }, opts.generation, {
      eosId: special.imEnd,
      imageContextId: special.imgContext,
      signal: opts.signal,
      onStep: onFirstRowId ? (step) => step[0] >= 0 && onFirstRowId(step[0]) : undefined,
    });
  }

  batchChat(
    items: BatchItem[],
    maxNum: number,
    generation: GenerationConfig,
    signal?: AbortSignal,
  ): Promise<ChatResult[]> {
    const started = performance.now();
    return this.exclusive(async () => {
      const plans = items.map((it, i) => this.planImages(it.images, maxNum, `items[${i}].images`));
      const tileCounts = plans.map((p) => p.reduce((n, x) => n + x.tiles, 0));
      const lengths = items.map((it, i) =>
        buildChatPromptIds(this.tokenizer, {
          question: it.question,
          imageTileCounts: tileCounts[i] > 0 ? [tileCounts[i]] : [],
          numImageToken: this.model.tokensPerTile,
        }).length
      );
      lengths.forEach((n) => this.checkLength(n, generation));
      const results: ChatResult[] = [];
      // Items are independent (batch_chat answers equal single chats), so a batch whose padded prompt
      // activations would not fit one storage binding runs as several smaller batches, in order.
      for (const group of batchGroups(lengths, this.maxBatchTokens)) {
        signal?.throwIfAborted();
        results.push(
          ...await this.runBatch(group.map((i) => items[i]), group, plans, maxNum, generation, signal),
        );
      }
      const ttft = performance.now() - started;
      return results.map((r) => ({ ...r, timeToFirstTokenMs: ttft }));
    });
  }

  /** Padded prompt tokens one batched prefill may hold: its widest activation must fit one binding. */
  private get maxBatchTokens(): number {
    const widest = Math.max(this.config.llm.intermediateSize, 2 * this.config.llm.hiddenSize);
    return Math.floor(this.model.gpu.maxBindingBytes / (widest * 4));
  }

  private async runBatch(
    items: BatchItem[],
    indices: number[],
    /** Every item's image plans (batchChat's), by item index. */
    plans: ReturnType<typeof planImageTiles>[][],
    maxNum: number,
    generation: GenerationConfig,
    signal?: AbortSignal,
  ): Promise<ChatResult[]> {
    // Each item's images: embeddings kept from an earlier request, else decoded for one encoder pass.
    const rows: { images: RowImages | null; imageKey: string; summaries: ImageSummary[]; tiles: number }[] =
      [];
    try {
      for (const [i, item] of items.entries()) {
        const summaries = plans[indices[i]].map(imageSummary);
        const tiles = summaries.reduce((n, s) => n + s.tiles, 0);
        const imageKey = imageIdentity(item.images, maxNum);
        const images = await this.rowImages(
          item.images,
          maxNum,
          imageKey,
          summaries,
          `items[${indices[i]}].images`,
        );
        rows.push({ images, imageKey, summaries, tiles });
      }
    } catch (e) {
      for (const r of rows) if (r.images && "kept" in r.images) r.images.kept.buffer.destroy();
      throw e;
    }
    const { inputIds, attentionMask } = buildBatchPromptIds(
      this.tokenizer,
      items.map((it, i) => ({ question: it.question, tileCount: rows[i].tiles })),
      { numImageToken: this.model.tokensPerTile },
    );
    const imageEmbeds = this.rowEmbeddings(rows);
    try {
      const outputs = await this.runGeneration(inputIds, attentionMask, imageEmbeds, { generation, signal });
      return outputs.map((out, i) => {
        const response = this.tokenizer.responseFromIds(out);
        return {
          response,
          history: [[items[i].question, response]],
          promptTokenIds: inputIds[i].filter((_: number, t: number) => attentionMask[i][t] === 1),
          outputTokenIds: out,
          images: rows[i].summaries,
          timeToFirstTokenMs: 0,
        } satisfies ChatResult;
      });
    } finally {
      imageEmbeds?.buffer.destroy();
    }
  }
}

/** Most new tokens a round may still make: its max_new_tokens less what it made before a pause. */
function newTokensLeft(r: WaitingRound): number {
  return r.req.generation.maxNewTokens - (r.continued?.before.length ?? 0);
}

/**
 * Rounds batch together when their decoding differs only in what each row has of its own (max_new_tokens,
 * the sampling seed): the repetition penalty and the sampling warpers are one value for the whole batch.
 */
function batchKey(g: GenerationConfig): string {
  const sampling = g.doSample ? [g.temperature, g.topK, g.topP] : [];
  return JSON.stringify([g.doSample, g.repetitionPenalty, ...sampling]);
}

/** What a response reports of an image's tiling. */
function imageSummary(p: ReturnType<typeof planImageTiles>): ImageSummary {
  return { grid: [p.grid[0], p.grid[1]], tiles: p.tiles };
}

/**
 * Each image's SHA-256, by the request's bytes: a request's images are hashed where it is prepared early, where
 * it is planned and where it may join a batch; once is enough.
 */
const imageDigests = new WeakMap<Uint8Array, Uint8Array>();

/** SHA-256 over the images' bytes and the tiling setting: what the <IMG_CONTEXT> positions were computed from. */
function imageIdentity(images: Uint8Array[], maxNum: number): string {
  if (images.length === 0) return "";
  // Synchronous (node:crypto), so that a round's identity is there wherever it is needed, a join decision
  // between two decode steps included; ~1 ms for a few megabytes.
  const all = createHash("sha256");
  for (const bytes of images) {
    let digest = imageDigests.get(bytes);
    if (!digest) imageDigests.set(bytes, digest = createHash("sha256").update(bytes).digest());
    all.update(digest);
  }
  const n = new Uint8Array(4);
  new DataView(n.buffer).setUint32(0, maxNum);
  return all.update(n).digest("hex");
}

/**
 * Consecutive runs of item indices whose left-padded batch (count × longest prompt) stays within
 * `maxTokens`, and, given `room`, whose cache (longest prompt + most new tokens of any item) stays within
 * `room.context` positions; an item alone always forms a group.
 */
export function batchGroups(
  lengths: number[],
  maxTokens: number,
  room?: { newTokens: number[]; kept?: number[]; context: number },
): number[][] {
  const groups: number[][] = [];
  let current: number[] = [], longest = 0, most = 0, keptMost = 0;
  lengths.forEach((n, i) => {
    const answer = room?.newTokens[i] ?? 0, kept = room?.kept?.[i] ?? 0;
    const wider = Math.max(longest, n);
    const tooLong = room !== undefined &&
      Math.max(keptMost, kept) + wider + Math.max(most, answer) > room.context;
    if (current.length > 0 && (wider * (current.length + 1) > maxTokens || tooLong)) {
      groups.push(current);
      current = [];
      longest = most = keptMost = 0;
    }
    current.push(i);
    longest = Math.max(longest, n);
    most = Math.max(most, answer);
    keptMost = Math.max(keptMost, kept);
  });
  if (current.length) groups.push(current);
  return groups;
}

/** Runs `work` on image i; its InputError then names the field, e.g. `items[2].images[0]`. */
function namingImage<T>(param: string, i: number, work: () => T): T {
  const relabel = (e: unknown): never => {
    if (e instanceof InputError) {
      throw new InputError(`${param}[${i}]: ${e.message}`, { ...e.options, param: `${param}[${i}]` });
    }
    throw e;
  };
  try {
    const out = work();
    return (out instanceof Promise ? out.catch(relabel) : out) as T;
  } catch (e) {
    return relabel(e);
  }
}

/** The images of several requests as one (batch_chat's items, in order). */
function joinPrepared(prepared: PreparedImages[]): PreparedImages {
  const inputs = prepared.map((p) => p.input).filter((x) => x !== null);
  const tiles = prepared.reduce((n, p) => n + p.tiles, 0);
  const summaries = prepared.flatMap((p) => p.summaries);
  if (inputs.length === 0) return { input: null, tiles, summaries };
  const input = inputs.every((x) => x instanceof Float32Array)
    ? concat(inputs as Float32Array[])
    : (inputs as DecodedImage[][]).flat();
  return { input, tiles, summaries };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
