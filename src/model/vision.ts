// InternViT-6B-448px-V1-5 forward pass.
// Mirrors InternVisionEmbeddings / InternVisionEncoderLayer / InternAttention (modeling_intern_vit.py,
// OpenGVLab/InternVL 4d48dce), norm_type rms_norm, qk_normalization, no qkv bias, drop_path = identity.
import type { Gpu } from "../gpu/device.ts";
import { reshape, type Tensor } from "../gpu/tensor.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { linear, type LinearWeights, type LlmInt8Gemm, uploadLinear } from "../ops/linear.ts";
import { LlmInt8Scratch, visionOutlierCap } from "../ops/llm_int8.ts";
import { type Int8MatmulSetting, llmInt8GemmFor, weightOnly } from "./int8_matmul.ts";
import { rmsNorm } from "../ops/rms_norm.ts";
import { gelu } from "../ops/gelu.ts";
import { residualAdd } from "../ops/residual_add.ts";
import { patchify } from "../ops/patchify.ts";
import { vitEmbeddings } from "../ops/vit_embeddings.ts";
import { splitVitQkv } from "../ops/split_vit_qkv.ts";
import { attentionFull } from "../ops/attention_full.ts";
import type { VisionDims } from "./dims.ts";
import type { WeightUploader } from "./weight_source.ts";

export interface VisionLayerWeights {
  norm1: Tensor; // [D]
  qkv: LinearWeights; // [3D, D]
  qNorm: Tensor; // [D]
  kNorm: Tensor; // [D]
  proj: LinearWeights; // [D, D] + bias
  ls1: Tensor; // [D]
  norm2: Tensor; // [D]
  fc1: LinearWeights; // [I, D] + bias
  fc2: LinearWeights; // [D, I] + bias
  ls2: Tensor; // [D]
}

export interface VisionWeights {
  patchEmbedding: LinearWeights; // conv [D, 3, p, p] as [D, 3·p·p] f32 + bias
  classEmbedding: Tensor; // [D]
  positionEmbedding: Tensor; // [P² + 1, D]
  layers: VisionLayerWeights[];
}

export async function loadVisionWeights(w: WeightUploader, dims: VisionDims): Promise<VisionWeights> {
  const D = dims.hidden, p = dims.patchSize, P = dims.patchesPerSide;
  const pre = "vision_model.embeddings";
  const conv = await w.source.readFloat32(`${pre}.patch_embedding.weight`, [D, 3, p, p]);
  const convBias = await w.source.readFloat32(`${pre}.patch_embedding.bias`, [D]);
  const patchEmbedding = uploadLinear(w.gpu, `${pre}.patch_embedding`, {
    kind: "float",
    weight: conv,
    bias: convBias,
    outFeatures: D,
    inFeatures: 3 * p * p,
  });
  const classEmbedding = w.gpu.uploadTensor(
    `${pre}.class_embedding`,
    "f32",
    [D],
    await w.source.readFloat32(`${pre}.class_embedding`, [1, 1, D]),
  );
  const positionEmbedding = w.gpu.uploadTensor(
    `${pre}.position_embedding`,
    "f32",
    [P * P + 1, D],
    await w.source.readFloat32(`${pre}.position_embedding`, [1, P * P + 1, D]),
  );
  const layers: VisionLayerWeights[] = [];
  for (let l = 0; l < dims.layers; l++) {
    const n = `vision_model.encoder.layers.${l}`;
    layers.push({
      norm1: await w.vector(`${n}.norm1.weight`, [D]),
      qkv: await w.linear(`${n}.attn.qkv`, 3 * D, D),
      qNorm: await w.vector(`${n}.attn.q_norm.weight`, [D]),
      kNorm: await w.vector(`${n}.attn.k_norm.weight`, [D]),
      proj: await w.linear(`${n}.attn.proj`, D, D),
      ls1: await w.vector(`${n}.ls1`, [D]),
      norm2: await w.vector(`${n}.norm2.weight`, [D]),
      fc1: await w.linear(`${n}.mlp.fc1`, dims.intermediate, D),
      fc2: await w.linear(`${n}.mlp.fc2`, D, dims.intermediate),
      ls2: await w.vector(`${n}.ls2`, [D]),
    });
  }
  return { patchEmbedding, classEmbedding, positionEmbedding, layers };
}

/** Scratch tensors for N tiles, allocated once per tile count. */
export class VisionScratch {
  readonly patches: Tensor; // [N, P², 3p²]
  readonly patchEmbeds: Tensor; // [N·P², D]
  readonly hidden: Tensor; // [N·(P²+1), D] — the residual stream, also the output
  readonly normed: Tensor; // [N·(P²+1), D]
  readonly qkv: Tensor; // [N·(P²+1), 3D]
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly qNormed: Tensor;
  readonly kNormed: Tensor;
  readonly attn: Tensor; // [N·(P²+1), D]
  readonly proj: Tensor; // [N·(P²+1), D]
  readonly mlp: Tensor; // [N·(P²+1), I]
  readonly mlpAct: Tensor; // [N·(P²+1), I]
  /** INT8_MATMUL=llm-int8: the LLM.int8 scratch of the int8 linears (null: weight-only). */
  readonly llmInt8: LlmInt8Gemm | null;

  constructor(
    gpu: Gpu,
    readonly dims: VisionDims,
    readonly tiles: number,
    matmul: Int8MatmulSetting = weightOnly,
  ) {
    const { hidden: D, patchSize: p, patchesPerSide: P, intermediate: I } = dims;
    const T = tiles * (P * P + 1);
    this.patches = gpu.createTensor("vit.patches", "f32", [tiles, P * P, 3 * p * p]);
    this.patchEmbeds = gpu.createTensor("vit.patch_embeds", "f32", [tiles * P * P, D]);
    this.hidden = gpu.createTensor("vit.hidden", "f32", [T, D]);
    this.normed = gpu.createTensor("vit.normed", "f32", [T, D]);
    this.qkv = gpu.createTensor("vit.qkv", "f32", [T, 3 * D]);
    this.q = gpu.createTensor("vit.q", "f32", [T, D]);
    this.k = gpu.createTensor("vit.k", "f32", [T, D]);
    this.v = gpu.createTensor("vit.v", "f32", [T, D]);
    this.qNormed = gpu.createTensor("vit.q_normed", "f32", [T, D]);
    this.kNormed = gpu.createTensor("vit.k_normed", "f32", [T, D]);
    this.attn = gpu.createTensor("vit.attn", "f32", [T, D]);
    this.proj = gpu.createTensor("vit.proj", "f32", [T, D]);
    this.mlp = gpu.createTensor("vit.mlp", "f32", [T, I]);
    this.mlpAct = gpu.createTensor("vit.mlp_act", "f32", [T, I]);
    this.llmInt8 = llmInt8GemmFor(
      matmul,
      () => new LlmInt8Scratch(gpu, "vit.llm_int8", T, Math.max(D, I), Math.max(3 * D, I), visionOutlierCap),
    );
  }

  destroy(): void {
    for (const t of Object.values(this)) if (t && typeof t === "object" && "buffer" in t) t.buffer.destroy();
    this.llmInt8?.scratch.destroy();
  }
}

/**
 * A hook to look at any intermediate (tests compare them with the reference's); free when absent.
 * It runs while the work is being recorded: record a copy into `r` to see the value at that point.
 */
export type Tap = (name: string, layer: number, t: Tensor, r: Recorder) => void;

/**
 * `tap` that also submits after every `every`-th layer (the per-layer tap `layerName`): a long pass goes to
 * the GPU in parts, so the GPU starts on the first while the CPU records the rest.
 */
export function submittingEvery(layerName: string, every: number, tap?: Tap): Tap {
  return (name, layer, t, r) => {
    tap?.(name, layer, t, r);
    if (name === layerName && layer % every === every - 1) r.submit();
  };
}

/**
 * pixels: [N, 3, S, S] f32 normalised tiles → s.hidden: [N, P²+1, D] = the ViT's last hidden state
 * (hidden_states[select_layer]; the caller drops CLS in the pixel shuffle).
 */
export function visionForward(
  r: Recorder,
  w: VisionWeights,
  s: VisionScratch,
  pixels: Tensor,
  tap?: Tap,
): void {
  const { hidden: D, headDim, heads, patchSize, patchesPerSide: P, eps } = s.dims;
  const N = s.tiles, T = P * P + 1;
  patchify(r, pixels, s.patches, patchSize);
  linear(r, reshape(s.patches, [N * P * P, 3 * patchSize * patchSize]), w.patchEmbedding, s.patchEmbeds);
  const hidden3 = reshape(s.hidden, [N, T, D]);
  vitEmbeddings(r, reshape(s.patchEmbeds, [N, P * P, D]), w.classEmbedding, w.positionEmbedding, hidden3);
  tap?.("vit.embeddings", -1, s.hidden, r);
  const o = { llmInt8: s.llmInt8 }; // INT8_MATMUL=llm-int8: the int8 linears through LLM.int8
  w.layers.forEach((lw, l) => {
    // x = x + ls1 * attn(norm1(x))
    rmsNorm(r, s.hidden, lw.norm1, s.normed, eps);
    linear(r, s.normed, lw.qkv, s.qkv, o);
    splitVitQkv(r, s.qkv, s.q, s.k, s.v);
    // qk_normalization: RMSNorm over all heads of q (and k) before the head split.
    rmsNorm(r, s.q, lw.qNorm, s.qNormed, eps);
    rmsNorm(r, s.k, lw.kNorm, s.kNormed, eps);
    attentionFull(r, s.qNormed, s.kNormed, s.v, s.attn, { batch: N, tokens: T, numHeads: heads, headDim });
    linear(r, s.attn, lw.proj, s.proj, o);
    residualAdd(r, s.hidden, s.proj, lw.ls1);
    // x = x + ls2 * fc2(gelu(fc1(norm2(x))))
    rmsNorm(r, s.hidden, lw.norm2, s.normed, eps);
    linear(r, s.normed, lw.fc1, s.mlp, o);
    gelu(r, s.mlp, s.mlpAct);
    linear(r, s.mlpAct, lw.fc2, s.proj, o);
    // LLM.int8: [count, columns…] of the fc2 input's outlier columns (benchmarks read the counts).
    if (s.llmInt8) tap?.("vit.llm_int8.fc2_outliers", l, s.llmInt8.scratch.outliers, r);
    residualAdd(r, s.hidden, s.proj, lw.ls2);
    tap?.("vit.layer", l, s.hidden, r);
  });
}
