// What every benchmark section shares: the device and its timer, the shapes, the time budget, the model
// (built from GPU-generated random weights, or loaded from MODEL_DIR), and the results so far.
import type { Int8Matmul } from "../model/int8_matmul.ts";
import type { KvCacheDtype } from "../model/kv_cache.ts";
import { defaultVisionScratchBytes } from "../model/vision_scratch_pool.ts";
import { Gpu } from "../gpu/device.ts";
import type { ProjectorWeights } from "../model/projector.ts";
import type { VisionWeights } from "../model/vision.ts";
import type { LanguageWeights } from "../model/language.ts";
import { checkpointSource, InternVLModel, modelDims } from "../model/internvl.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { loadModelConfig } from "../weights/config.ts";
import { llmInt8Threshold } from "../ops/llm_int8.ts";
import { busyMsOf, GpuTimer } from "./gpu_timer.ts";
import type { BenchShapes } from "./shapes.ts";
import {
  SyntheticFactory,
  syntheticLanguageWeights,
  syntheticProjectorWeights,
  syntheticVisionWeights,
} from "./synthetic_weights.ts";

/** Wall-clock budget for the whole run; sections ask before starting work they can estimate. */
export class Budget {
  private readonly t0 = performance.now();
  constructor(readonly totalMs: number) {}

  get elapsedMs(): number {
    return performance.now() - this.t0;
  }

  get remainingMs(): number {
    return this.totalMs - this.elapsedMs;
  }
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface BenchModel {
  model: InternVLModel;
  vision: VisionWeights;
  projector: ProjectorWeights;
  language: LanguageWeights;
  source: "synthetic" | "checkpoint";
  /** Wall time to create + fill (synthetic) or read + upload (checkpoint), including the final sync. */
  buildMs: number;
  /** GPU time of the random fills (timestamps), null for checkpoints or without timestamp-query. */
  fillGpuMs: number | null;
  bytes: number;
  tensors: number;
  maxTensorBytes: number;
  destroy(): void;
}

export class BenchContext {
  gpu!: Gpu;
  timer!: GpuTimer;
  private built: BenchModel | null = null;
  /** Measured copy bandwidth of this card (GB/s), once the copy section ran. */
  copyGBps: number | null = null;
  /** Headline figures, filled in by the sections (see report.ts for the key list). */
  readonly results: Record<string, Json> = {};
  /** Per-section details: status, wall time, figures, errors. */
  readonly sections: Record<string, Record<string, Json>> = {};
  /** Pipelines already built for these kernels? (TTFT says whether it includes shader compilation.) */
  pipelinesWarm = false;
  /** performance.now() by which the running section should be done (the runner sets it). */
  deadline = Infinity;

  constructor(
    readonly shapes: BenchShapes,
    readonly budget: Budget,
    readonly opts: {
      forceWallClock: boolean;
      modelDir: string | null;
      seed: number;
      /** How the model's int8 linears multiply (INT8_MATMUL). */
      int8Matmul: Int8Matmul;
      /** How the language model's KV caches store keys and values (KV_CACHE_DTYPE); default f32. */
      kvCacheDtype?: KvCacheDtype;
      log: (s: string) => void;
    },
  ) {}

  async init(): Promise<void> {
    this.gpu = await Gpu.create();
    this.timer = GpuTimer.install(this.gpu, this.opts.forceWallClock);
  }

  /** Throws away the device (after a GPU error poisons it: Gpu keeps its first error) and starts afresh. */
  async resetDevice(): Promise<void> {
    this.built = null; // its buffers die with the device
    this.timer.destroy();
    this.gpu.destroy();
    await this.init();
    this.pipelinesWarm = false;
  }

  /** Whether work estimated at `ms` still fits the running section's share of the budget. */
  fits(ms: number): boolean {
    return performance.now() + ms <= this.deadline;
  }

  get hasModel(): boolean {
    return this.built !== null;
  }

  /** The model, built on first use. */
  async model(): Promise<BenchModel> {
    this.built ??= this.opts.modelDir
      ? await this.loadCheckpoint(this.opts.modelDir)
      : await this.buildSynthetic();
    return this.built;
  }

  /** Frees the model's GPU memory (before PyTorch needs the card). */
  async dropModel(): Promise<void> {
    if (!this.built) return;
    this.built.destroy();
    this.built = null;
    await this.gpu.sync("freeing the model");
  }

  private async buildSynthetic(): Promise<BenchModel> {
    const { gpu, timer, shapes } = this;
    const t0 = performance.now();
    const r = gpu.recorder("bench.weights");
    const f = new SyntheticFactory(gpu, r, this.opts.seed);
    const vision = syntheticVisionWeights(f, shapes.vision);
    const projector = syntheticProjectorWeights(f, shapes.projector);
    const language = syntheticLanguageWeights(f, shapes.language);
    timer.start("weights.fill");
    r.submit();
    const stamps = await timer.collect();
    await gpu.sync("filling random weights");
    const buildMs = performance.now() - t0;
    const dims = { vision: shapes.vision, projector: shapes.projector, language: shapes.language };
    const model = InternVLModel.fromWeights(
      gpu,
      dims,
      vision,
      projector,
      language,
      { mode: this.opts.int8Matmul, threshold: llmInt8Threshold },
      defaultVisionScratchBytes,
      this.opts.kvCacheDtype,
    );
    return {
      model,
      vision,
      projector,
      language,
      source: "synthetic",
      buildMs,
      fillGpuMs: stamps.length ? busyMsOf(stamps) : null,
      bytes: f.bytes,
      tensors: f.tensors,
      maxTensorBytes: Math.max(...f.created.map((t) => t.byteLength)),
      destroy: () => {
        model.releaseScratch();
        f.destroyAll();
      },
    };
  }

  private async loadCheckpoint(dir: string): Promise<BenchModel> {
    const t0 = performance.now();
    const config = await loadModelConfig(dir);
    const dims = modelDims(config);
    for (const part of ["vision", "projector", "language"] as const) {
      const want = JSON.stringify(this.shapes[part]), got = JSON.stringify(dims[part]);
      if (want !== got) this.opts.log(`note: ${dir} ${part} dims ${got} differ from the bench's ${want}`);
    }
    const ckpt = await openCheckpoint(dir);
    let model: InternVLModel;
    try {
      model = await InternVLModel.load(
        this.gpu,
        config,
        checkpointSource(ckpt),
        undefined,
        this.opts.int8Matmul,
        defaultVisionScratchBytes,
        this.opts.kvCacheDtype,
      );
    } finally {
      await ckpt.close();
    }
    const m = model as unknown as {
      vision: VisionWeights;
      projector: ProjectorWeights;
      language: LanguageWeights;
    };
    return {
      model,
      vision: m.vision,
      projector: m.projector,
      language: m.language,
      source: "checkpoint",
      buildMs: performance.now() - t0,
      fillGpuMs: null,
      bytes: NaN,
      tensors: NaN,
      maxTensorBytes: NaN,
      // The checkpoint model has no destroy(); its buffers go with the device (resetDevice).
      destroy: () => {},
    };
  }
}

/**
 * A started context with the bench's random-weight model (seed 1) in `int8Matmul` mode, for scripts that
 * probe one part of the model (scripts/probe_*.ts): no section runner, a 10-minute budget.
 */
export async function syntheticModelContext(
  shapes: BenchShapes,
  int8Matmul: Int8Matmul,
): Promise<BenchContext> {
  const ctx = new BenchContext(shapes, new Budget(600_000), {
    forceWallClock: false,
    modelDir: null,
    seed: 1,
    int8Matmul,
    log: console.log,
  });
  await ctx.init();
  await ctx.model();
  return ctx;
}
