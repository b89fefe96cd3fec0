// InternVLChatModel: InternViT → pixel shuffle + mlp1 → InternLM2 (modeling_internvl_chat.py, 4d48dce).
import type { Gpu } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Checkpoint } from "../weights/checkpoint.ts";
import type { ModelConfig } from "../weights/config.ts";
import type { LanguageDims, ProjectorDims, VisionDims } from "./dims.ts";
import {
  type Int8Matmul,
  type Int8MatmulSetting,
  llmInt8ForFew,
  llmInt8ForMany,
  weightOnly,
} from "./int8_matmul.ts";
import { type LlmInt8ScratchPool, llmInt8Threshold } from "../ops/llm_int8.ts";
import { loadVisionWeights, type Tap, type VisionWeights } from "./vision.ts";
import { ImageEncoding, visionLayersLike } from "./image_encoding.ts";
import { loadProjectorWeights, type ProjectorWeights } from "./projector.ts";
import { defaultVisionScratchBytes, VisionScratchPool } from "./vision_scratch_pool.ts";
import {
  languageGemmPool,
  type LanguageWeights,
  loadLanguageWeights,
  maxGroupedStepRows,
} from "./language.ts";
import { maxKeptPromptTokens, PromptScratchPool } from "./prompt_scratch_pool.ts";
import { LmRunner, maxChunkedPrompt } from "./lm_runner.ts";
import type { KvCacheDtype } from "./kv_cache.ts";
import { maxMatvecTokens } from "../ops/linear.ts";
import { argmax } from "../ops/argmax.ts";
import { sampleToken } from "../ops/sample_token.ts";
import { markSeen, repetitionPenalty } from "../ops/repetition_penalty.ts";
import { normalizationTable } from "../image/pixel_values.ts";
import type { DecodedImage } from "./gpu_tiling.ts";
import { type WeightSource, WeightUploader } from "./weight_source.ts";

export function modelDims(
  config: ModelConfig,
): { vision: VisionDims; projector: ProjectorDims; language: LanguageDims } {
  const v = config.vision, l = config.llm;
  if (config.psVersion !== "v2" || config.downsampleRatio !== 0.5) {
    throw new Error(
      `Unsupported projector: ps_version ${config.psVersion}, downsample_ratio ${config.downsampleRatio} ` +
        `(InternVL-Chat-V1.5 uses v2 and 0.5)`,
    );
  }
  if (v.normType !== "rms_norm" || !v.qkNormalization || v.qkvBias) {
    throw new Error("Unsupported vision encoder: expected rms_norm, qk_normalization and no qkv bias (V1.5)");
  }
  if (config.tiling.imageSize !== v.imageSize) {
    throw new Error(`force_image_size ${config.tiling.imageSize} differs from the ViT's ${v.imageSize}`);
  }
  // hidden_states has numLayers + 1 entries (embeddings first); select_layer indexes it like Python.
  const select = config.selectLayer < 0 ? v.numLayers + 1 + config.selectLayer : config.selectLayer;
  if (select < 1 || select > v.numLayers) {
    throw new Error(`select_layer ${config.selectLayer} is out of range`);
  }
  return {
    vision: {
      hidden: v.hiddenSize,
      heads: v.numHeads,
      headDim: v.headDim,
      layers: select,
      intermediate: v.intermediateSize,
      eps: v.layerNormEps,
      imageSize: v.imageSize,
      patchSize: v.patchSize,
      patchesPerSide: v.patchesPerSide,
    },
    projector: { inFeatures: 4 * v.hiddenSize, hidden: l.hiddenSize, eps: 1e-5 },
    language: {
      hidden: l.hiddenSize,
      heads: l.numHeads,
      kvHeads: l.numKvHeads,
      headDim: l.headDim,
      layers: l.numLayers,
      intermediate: l.intermediateSize,
      vocab: l.vocabSize,
      eps: l.rmsNormEps,
      ropeTheta: l.ropeTheta,
      maxPositions: l.maxPositionEmbeddings,
    },
  };
}

/** Adapts the safetensors checkpoint reader (src/weights) to what the loaders need. */
export function checkpointSource(ckpt: Checkpoint): WeightSource {
  return {
    readFloat32: (name, shape) => ckpt.readFloat32(name, shape),
    readRaw: async (name, shape) => {
      ckpt.checkShape(name, shape);
      return { dtype: ckpt.info(name).dtype, bytes: await ckpt.readBytes(name) };
    },
    readLinear: (prefix, outFeatures, inFeatures) => ckpt.readLinear(prefix, { outFeatures, inFeatures }),
  };
}

/** Submits of the vision encoder's layers in `encodeImages` (5 layers each for InternViT-6B's 45). */
const vitSubmits = 9;

/** Tiles of the vision scratch `warmUp` keeps ready: max_num 6 (the model card's) plus the thumbnail. */
export const warmImageTiles = 7;

/** Keys of `warmUp`'s steps: more than one split of the decode attention holds (32), so they split. */
const warmStepKeys = 40;
/** The new tokens of the follow-up round the warm-up runs (a short question; the bench's is 31). */
const warmFollowupTokens = 31;

export class InternVLModel {
  private constructor(
    readonly gpu: Gpu,
    readonly dims: ReturnType<typeof modelDims>,
    readonly vision: VisionWeights,
    readonly projector: ProjectorWeights,
    readonly language: LanguageWeights,
    /**
     * How int8 linears multiply (INT8_MATMUL; src/model/int8_matmul.ts) and bitsandbytes' outlier threshold
     * for llm-int8: the checkpoint's llm_int8_threshold, else its default.
     */
    readonly matmul: Int8MatmulSetting,
    visionScratchBytes: number,
    /** How the language model's KV caches store keys and values (KV_CACHE_DTYPE). */
    readonly kvCacheDtype: KvCacheDtype,
  ) {
    this.gemmPool = llmInt8ForMany(matmul.mode) ? languageGemmPool(gpu, dims.language) : null;
    this.visionScratch = new VisionScratchPool(gpu, dims.vision, dims.projector, matmul, visionScratchBytes);
    this.promptPool = new PromptScratchPool(gpu, dims.language, matmul, this.gemmPool);
  }

  /** Scratch and bind groups of short prompt passes (follow-up rounds), kept between rounds. */
  readonly promptPool: PromptScratchPool;

  /**
   * INT8_MATMUL=llm-int8(-prefill): the LLM.int8 GEMM scratch every prompt pass shares (~0.3 GB for an
   * 1800-token prompt), so a request does not allocate its own.
   */
  private gemmPool: LlmInt8ScratchPool | null;

  /**
   * The vision encoder's and projector's scratch of a past image request, kept under VISION_SCRATCH_BYTES
   * so the next one does not allocate (41–47 ms of CPU for 7 tiles of InternViT-6B on the H100 host).
   */
  readonly visionScratch: VisionScratchPool;

  /** T.ToTensor + T.Normalize of each byte value, [3·256] f32, for images tiled on the GPU. */
  private normalization: Tensor | null = null;

  /** Frees the scratch the model keeps between requests (its weights belong to whoever made them). */
  releaseScratch(): void {
    this.gemmPool?.destroy();
    this.promptPool.destroy();
    this.visionScratch.destroy();
    this.normalization?.buffer.destroy();
    this.normalization = null;
  }

  static async load(
    gpu: Gpu,
    config: ModelConfig,
    source: WeightSource,
    onProgress?: (fraction: number, what: string) => void,
    int8Matmul: Int8Matmul = "weight-only",
    visionScratchBytes = defaultVisionScratchBytes,
    kvCacheDtype: KvCacheDtype = "f32",
  ): Promise<InternVLModel> {
    const dims = modelDims(config);
    const up = new WeightUploader(gpu, source);
    onProgress?.(0, "vision encoder");
    const vision = await loadVisionWeights(up, dims.vision);
    onProgress?.(0.25, "projector");
    const projector = await loadProjectorWeights(up, dims.projector);
    const language = await loadLanguageWeights(
      up,
      dims.language,
      (l) => onProgress?.(0.3 + 0.65 * (l + 1) / dims.language.layers, `language layer ${l + 1}`),
    );
    await gpu.sync("uploading weights");
    onProgress?.(0.95, "weights on the GPU");
    const q = config.quantization;
    const threshold = q.method === "bitsandbytes-int8"
      ? q.llmInt8Threshold ?? llmInt8Threshold
      : llmInt8Threshold;
    const matmul = { mode: int8Matmul, threshold };
    return InternVLModel.fromWeights(
      gpu,
      dims,
      vision,
      projector,
      language,
      matmul,
      visionScratchBytes,
      kvCacheDtype,
    );
  }

  /** A model from weights already on the GPU (the benchmark fills them with random values there). */
  static fromWeights(
    gpu: Gpu,
    dims: ReturnType<typeof modelDims>,
    vision: VisionWeights,
    projector: ProjectorWeights,
    language: LanguageWeights,
    matmul: Int8MatmulSetting = weightOnly,
    visionScratchBytes = defaultVisionScratchBytes,
    kvCacheDtype: KvCacheDtype = "f32",
  ): InternVLModel {
    return new InternVLModel(
      gpu,
      dims,
      vision,
      projector,
      language,
      matmul,
      visionScratchBytes,
      kvCacheDtype,
    );
  }

  /** Tokens each image tile contributes to the prompt (256 for V1.5). */
  get tokensPerTile(): number {
    return (this.dims.vision.patchesPerSide / 2) ** 2;
  }

  /**
   * Images → image embeddings [N·256, D_llm] on the GPU (extract_feature), N tiles in all. The images are
   * either pixel values [N, 3, S, S] f32 (preprocessImage's) or decoded images whose tiling's resizes and
   * normalisation then run on the GPU (src/model/gpu_tiling.ts; the same values, bit for bit).
   * The caller owns the returned tensor (destroy it when done).
   */
  encodeImages(
    images: Float32Array | readonly DecodedImage[],
    tiles: number,
    tap?: Tap,
    maxTilesPerPass?: number,
  ): Tensor {
    const layersPerPiece = this.dims.vision.layers; // a piece a tile group, submitted every few layers
    const encoding = this.beginImageEncoding(images, tiles, { layersPerPiece, tap, maxTilesPerPass });
    try {
      while (!encoding.step());
      return encoding.take();
    } finally {
      encoding.destroy();
    }
  }

  /**
   * `encodeImages` as pieces the caller submits one `step` at a time (layersPerPiece encoder layers each),
   * for a round whose encoding runs between a running batch's steps. The caller destroys it. Submitted every
   * few layers within a piece: the GPU starts on the first while the CPU records the rest (7 tiles' ~770
   * dispatches took ~50 ms to record and submit on the H100 host).
   */
  beginImageEncoding(
    images: Float32Array | readonly DecodedImage[],
    tiles: number,
    options: { layersPerPiece: number; tap?: Tap; maxTilesPerPass?: number },
  ): ImageEncoding {
    const parts = {
      gpu: this.gpu,
      vision: this.vision,
      projector: this.projector,
      visionDims: this.dims.vision,
      projectorDims: this.dims.projector,
      scratch: this.visionScratch,
      normalization: () =>
        this.normalization ??= this.gpu.uploadTensor(
          "image.normalization",
          "f32",
          [768],
          normalizationTable(),
        ),
    };
    return new ImageEncoding(parts, images, tiles, {
      layersPerPiece: options.layersPerPiece,
      layersPerSubmit: Math.ceil(this.dims.vision.layers / vitSubmits),
      maxTilesPerPass: options.maxTilesPerPass ?? this.maxTilesPerPass,
      tap: options.tap,
    });
  }

  /** `visionLayersLike` of this model: encoder layers a piece for a joining round's prompt chunks. */
  visionLayersLike(promptTokens: number, tiles: number): number {
    const perPass = Math.max(1, Math.min(tiles, this.maxTilesPerPass));
    return visionLayersLike(this.dims.vision, this.dims.language, promptTokens, perPass);
  }

  /** Most tiles one encoder pass takes: its largest activation must fit one storage binding. */
  get maxTilesPerPass(): number {
    const v = this.dims.vision;
    const T = v.patchesPerSide ** 2 + 1;
    const widest = Math.max(v.intermediate, 3 * v.hidden, 4 * v.hidden);
    return Math.max(1, Math.floor(this.gpu.maxBindingBytes / (T * widest * 4)));
  }

  /**
   * Builds the pipelines of every decode-sized shape (1–8 tokens per pass: prompt chunks, decode steps of
   * up to 8 sequences) by running each once on dummy ids, so the first follow-up round or batch a server
   * sees does not pay shader compilation (hundreds of ms on NVIDIA's Vulkan driver); and keeps a vision
   * scratch for `imageTiles` tiles (default 7: the model card's max_num 6 plus the thumbnail).
   */
  async warmUp(imageTiles = warmImageTiles): Promise<void> {
    // Room for the longest run of passes below: 22, 40 and 70 tokens, 1 + 2 + … + 8, then 31.
    const runner = this.newRunner(1, 224);
    const run = (n: number) => {
      const ids = Array.from({ length: n }, (_, i) => 1 + i);
      const r = this.gpu.recorder("warm-up");
      const free = runner.recordPrefill(r, [ids], [ids.map(() => 1)], -1, null);
      r.submit();
      free();
    };
    try {
      for (let n = 1; n <= maxMatvecTokens; n++) {
        runner.truncate(0);
        run(n);
      }
      // A single token after more cached keys than one split holds: decode attention with its combine pass.
      runner.truncate(0);
      run(warmStepKeys);
      run(1);
      // Every row count a step can have (batched rounds, beams; rows end and join mid-generation): none of
      // the passes above builds their pipelines. Past maxMatvecTokens rows a step runs in row groups
      // (`stepRowGroups`; 9: 8 and 1), and past those (maxGroupedStepRows: 17 weight-only, 25 with LLM.int8)
      // on the tiled GEMMs, in 32×128 tiles up to 32 rows, 64×64 up to 64 (the LM head of a step of 33–64 rows
      // in either mode), 128×128 past that (the vision encoder's): the first row count past the groups and 33
      // stand for those counts. With LLM.int8 two groups make one product, one pipeline for each size of its
      // first group (9, 11, 13 and 16 rows: 5, 6, 7 and 8; 13 also stands for 8 + 5 where groups stay 8),
      // and past 16 rows a third group of 1 or 2 rows leaves its Σout² (17 and 18 rows).
      const pastGroups = maxGroupedStepRows(this.matmul) + 1;
      const m = maxMatvecTokens;
      const pairs = llmInt8ForFew(this.matmul.mode, 2 * m) ? [11, 13, 2 * m, 2 * m + 1, 2 * m + 2] : [];
      for (
        const rows of [...Array.from({ length: m }, (_, i) => i + 2), ...pairs, pastGroups, 33]
      ) {
        this.warmStep(rows);
      }
      // Prompt passes past the chunked sizes, one of each tiling's rows (tiled GEMMs in 32×128, 64×64 and
      // 128×128 tiles, split K and not; prefill attention), and one image tile (every vision and projector
      // kernel, the unsplit tiled GEMMs), so a server's first image request pays no compilation either.
      runner.truncate(0);
      for (const n of [maxChunkedPrompt + 6, 40, maxKeptPromptTokens + 6]) run(n);
      // Follow-up rounds' new tokens after those (past one split of the decode attention, as in a
      // conversation, so each chunk's attention has its combine pass): the kept scratch of short prompt passes
      // of every class (src/model/prompt_scratch_pool.ts) with the bind groups of all their dispatches but
      // those binding a runner's own buffers, for the first follow-up rounds a server sees.
      for (let n = 1; n <= maxMatvecTokens; n++) run(n);
      run(warmFollowupTokens);
      // The vision scratch of `imageTiles` tiles, kept if VISION_SCRATCH_BYTES allows: the first image
      // request then takes it instead of building it (~55 ms of CPU for 7 tiles on the H100 host, PERF.md
      // v24). Built before the 1-tile pass below, which then runs in its front.
      this.visionScratch.reserve(Math.min(imageTiles, this.maxTilesPerPass));
      // The tile comes from a tiny image tiled on the GPU, which builds the resize pipelines too (their
      // compilation added 220–231 ms to the first IMAGE_RESIZE=gpu request on the H100 host, PERF.md v25).
      const image = { width: 3, height: 2, data: new Uint8Array(18) };
      this.encodeImages([{ image, grid: [1, 1], thumbnail: false }], 1).buffer.destroy();
    } finally {
      runner.destroy();
    }
    await this.gpu.sync("warming up the decode pipelines");
  }

  /**
   * Records and submits what a step of `rows` rows builds: their short prompt pass (the ≤ 64-row GEMM
   * tiling, the batched prompt attention), a step over more keys than one split holds (the batch variant of
   * the decode attention, PERF.md v54, and its combine pass, whose LLM.int8 rows scan groups the rows by
   * powers of two), the LM head at that many rows (in LLM.int8 a tiling of its own at the real vocab) and the
   * token choices generate() records after each step. Warm-up only: the step's extra keys are the cache's
   * zeros.
   */
  private warmStep(rows: number): void {
    const runner = this.newRunner(rows, warmStepKeys + 1);
    const chosen = this.gpu.createTensor("warm-up.next", "i32", [rows]);
    const seen = this.gpu.createTensor("warm-up.seen", "u32", [rows, runner.logits.shape[1]]);
    try {
      const r = this.gpu.recorder("warm-up");
      const prompt = Array.from({ length: rows }, (_, b) => [1 + b, 2, 3, 4, 5]);
      const free = runner.recordPrefill(r, prompt, prompt.map((row) => row.map(() => 1)), -1, null);
      runner.cache.length = warmStepKeys;
      runner.recordDecode(r, chosen);
      repetitionPenalty(r, runner.logits, seen, 1.1);
      argmax(r, runner.logits, chosen);
      sampleToken(r, runner.logits, chosen, { temperature: 1, topK: 0, topP: 1, seed: 0, step: 0 });
      markSeen(r, chosen, seen);
      r.submit();
      free();
    } finally {
      runner.destroy();
      chosen.buffer.destroy();
      seen.buffer.destroy();
    }
  }

  /** A generation batch of B sequences with room for `capacity` positions each. */
  newRunner(batch: number, capacity: number): LmRunner {
    return new LmRunner(
      this.gpu,
      this.language,
      this.dims.language,
      batch,
      capacity,
      this.matmul,
      this.gemmPool,
      this.kvCacheDtype,
      this.promptPool,
    );
  }
}
