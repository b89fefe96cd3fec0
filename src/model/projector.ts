// The vision→language projector: pixel shuffle (ps_version v2) then mlp1 =
// Sequential(LayerNorm(4·Dv), Linear(4·Dv, D), GELU, Linear(D, D)).
// Mirrors InternVLChatModel.pixel_shuffle / extract_feature (modeling_internvl_chat.py, 4d48dce).
import type { Gpu } from "../gpu/device.ts";
import { frontView, reshape, type Tensor } from "../gpu/tensor.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { linear, type LinearWeights, type LlmInt8Gemm } from "../ops/linear.ts";
import { LlmInt8Scratch, visionOutlierCap } from "../ops/llm_int8.ts";
import { type Int8MatmulSetting, llmInt8GemmFor, weightOnly } from "./int8_matmul.ts";
import { layerNorm } from "../ops/layer_norm.ts";
import { gelu } from "../ops/gelu.ts";
import { pixelShuffle } from "../ops/pixel_shuffle.ts";
import type { ProjectorDims, VisionDims } from "./dims.ts";
import type { WeightUploader } from "./weight_source.ts";

export interface ProjectorWeights {
  norm: { weight: Tensor; bias: Tensor }; // mlp1.0 [4Dv]
  fc1: LinearWeights; // mlp1.1 [D, 4Dv] (int8 in the -Int8 checkpoint)
  fc2: LinearWeights; // mlp1.3 [D, D] (bf16: bitsandbytes keeps the last module unquantized)
}

export async function loadProjectorWeights(
  w: WeightUploader,
  dims: ProjectorDims,
): Promise<ProjectorWeights> {
  return {
    norm: {
      weight: await w.vector("mlp1.0.weight", [dims.inFeatures]),
      bias: await w.vector("mlp1.0.bias", [dims.inFeatures]),
    },
    fc1: await w.linear("mlp1.1", dims.hidden, dims.inFeatures),
    fc2: await w.linear("mlp1.3", dims.hidden, dims.hidden),
  };
}

/** Scratch for N tiles; `forTiles` sees one built for more tiles as a scratch for fewer. */
export class ProjectorScratch {
  readonly shuffled: Tensor; // [N·256, 4Dv]
  readonly normed: Tensor; // [N·256, 4Dv]
  readonly fc1: Tensor; // [N·256, D]
  readonly act: Tensor; // [N·256, D]
  readonly out: Tensor; // [N·256, D] — image embeddings, in tile order

  /** INT8_MATMUL=llm-int8: the LLM.int8 scratch of the int8 linears (null: weight-only). */
  readonly llmInt8: LlmInt8Gemm | null;

  constructor(
    private readonly gpu: Gpu,
    private readonly vision: VisionDims,
    private readonly dims: ProjectorDims,
    readonly tiles: number,
    private readonly matmul: Int8MatmulSetting = weightOnly,
    /** Set by `forTiles`: the scratch whose buffers this one views (it then owns none). */
    private readonly base: ProjectorScratch | null = null,
  ) {
    const tokens = tiles * (vision.patchesPerSide / 2) ** 2;
    const tensor = (label: string, shape: number[], of?: Tensor) =>
      of ? frontView(of, shape) : gpu.createTensor(label, "f32", shape);
    this.shuffled = tensor("proj.shuffled", [tokens, dims.inFeatures], base?.shuffled);
    this.normed = tensor("proj.normed", [tokens, dims.inFeatures], base?.normed);
    this.fc1 = tensor("proj.fc1", [tokens, dims.hidden], base?.fc1);
    this.act = tensor("proj.act", [tokens, dims.hidden], base?.act);
    this.out = tensor("proj.out", [tokens, dims.hidden], base?.out);
    const maxK = Math.max(dims.inFeatures, dims.hidden);
    // The LLM.int8 scratch serves any token count up to the one it was built for.
    this.llmInt8 = base ? base.llmInt8 : llmInt8GemmFor(
      matmul,
      () => new LlmInt8Scratch(gpu, "proj.llm_int8", tokens, maxK, dims.hidden, visionOutlierCap),
    );
  }

  /** This scratch for `tiles` ≤ this.tiles: the front of the same buffers, so destroy this one, not it. */
  forTiles(tiles: number): ProjectorScratch {
    if (!(Number.isInteger(tiles) && tiles >= 1 && tiles <= this.tiles)) {
      throw new Error(`ProjectorScratch for ${this.tiles} tiles cannot serve ${tiles}`);
    }
    return tiles === this.tiles
      ? this
      : new ProjectorScratch(this.gpu, this.vision, this.dims, tiles, this.matmul, this);
  }

  /** GPU bytes of its buffers (a view's: its base's, which it shares). */
  get byteLength(): number {
    const own = this.tensors.reduce((n, t) => n + t.buffer.size, 0);
    return own + (this.llmInt8?.scratch.byteLength ?? 0);
  }

  /** Frees the buffers; a view from `forTiles` owns none and frees nothing. */
  destroy(): void {
    if (this.base) return;
    for (const t of this.tensors) t.buffer.destroy();
    this.llmInt8?.scratch.destroy();
  }

  private get tensors(): Tensor[] {
    return [this.shuffled, this.normed, this.fc1, this.act, this.out];
  }
}

/** vitHidden: [N, P²+1, Dv] (CLS first, dropped here) → s.out: [N·(P/2)², D]. */
export function projectorForward(
  r: Recorder,
  w: ProjectorWeights,
  s: ProjectorScratch,
  vitHidden: Tensor,
  vision: VisionDims,
  dims: ProjectorDims,
): void {
  const N = s.tiles, P = vision.patchesPerSide;
  const q = (P / 2) ** 2;
  pixelShuffle(r, vitHidden, reshape(s.shuffled, [N, q, dims.inFeatures]), { gridSide: P });
  layerNorm(r, s.shuffled, w.norm.weight, w.norm.bias, s.normed, dims.eps);
  linear(r, s.normed, w.fc1, s.fc1, { llmInt8: s.llmInt8 });
  gelu(r, s.fc1, s.act);
  linear(r, s.act, w.fc2, s.out, { llmInt8: s.llmInt8 });
}
