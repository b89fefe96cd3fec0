// The vision→language projector: pixel shuffle (ps_version v2) then mlp1 =
// Sequential(LayerNorm(4·Dv), Linear(4·Dv, D), GELU, Linear(D, D)).
// Mirrors InternVLChatModel.pixel_shuffle / extract_feature (modeling_internvl_chat.py, 4d48dce).
import type { Gpu } from "../gpu/device.ts";
import { reshape, type Tensor } from "../gpu/tensor.ts";
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

export class ProjectorScratch {
  readonly shuffled: Tensor; // [N·256, 4Dv]
  readonly normed: Tensor; // [N·256, 4Dv]
  readonly fc1: Tensor; // [N·256, D]
  readonly act: Tensor; // [N·256, D]
  readonly out: Tensor; // [N·256, D] — image embeddings, in tile order

  /** INT8_MATMUL=llm-int8: the LLM.int8 scratch of the int8 linears (null: weight-only). */
  readonly llmInt8: LlmInt8Gemm | null;

  constructor(
    gpu: Gpu,
    vision: VisionDims,
    dims: ProjectorDims,
    readonly tiles: number,
    matmul: Int8MatmulSetting = weightOnly,
  ) {
    const tokens = tiles * (vision.patchesPerSide / 2) ** 2;
    this.shuffled = gpu.createTensor("proj.shuffled", "f32", [tokens, dims.inFeatures]);
    this.normed = gpu.createTensor("proj.normed", "f32", [tokens, dims.inFeatures]);
    this.fc1 = gpu.createTensor("proj.fc1", "f32", [tokens, dims.hidden]);
    this.act = gpu.createTensor("proj.act", "f32", [tokens, dims.hidden]);
    this.out = gpu.createTensor("proj.out", "f32", [tokens, dims.hidden]);
    const maxK = Math.max(dims.inFeatures, dims.hidden);
    this.llmInt8 = llmInt8GemmFor(
      matmul,
      () => new LlmInt8Scratch(gpu, "proj.llm_int8", tokens, maxK, dims.hidden, visionOutlierCap),
    );
  }

  destroy(): void {
    for (const t of [this.shuffled, this.normed, this.fc1, this.act, this.out]) t.buffer.destroy();
    this.llmInt8?.scratch.destroy();
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
