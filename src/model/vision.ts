// InternViT-6B-448px-V1-5 forward pass.
// Mirrors InternVisionEmbeddings / InternVisionEncoderLayer / InternAttention (modeling_intern_vit.py,
// OpenGVLab/InternVL 4d48dce), norm_type rms_norm, qk_normalization, no qkv bias, drop_path = identity.
import type { Gpu } from "../gpu/device.ts";
import { frontView, reshape, type Tensor } from "../gpu/tensor.ts";
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
import { attentionFullRows } from "../ops/attention_full_rows.ts";
import { queryRowsHold } from "../ops/query_rows.ts";
import { copyRows } from "../ops/gather_rows.ts";
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

/**
 * Scratch tensors for N tiles, allocated once per tile count; `forTiles` sees one built for more tiles as
 * a scratch for fewer (src/model/vision_scratch_pool.ts keeps one between requests).
 */
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
    private readonly gpu: Gpu,
    readonly dims: VisionDims,
    readonly tiles: number,
    private readonly matmul: Int8MatmulSetting = weightOnly,
    /** Set by `forTiles`: the scratch whose buffers this one views (it then owns none). */
    private readonly base: VisionScratch | null = null,
  ) {
    const { hidden: D, patchSize: p, patchesPerSide: P, intermediate: I } = dims;
    const T = tiles * (P * P + 1);
    const tensor = (label: string, shape: number[], of?: Tensor) =>
      of ? frontView(of, shape) : gpu.createTensor(label, "f32", shape);
    this.patches = tensor("vit.patches", [tiles, P * P, 3 * p * p], base?.patches);
    this.patchEmbeds = tensor("vit.patch_embeds", [tiles * P * P, D], base?.patchEmbeds);
    this.hidden = tensor("vit.hidden", [T, D], base?.hidden);
    this.normed = tensor("vit.normed", [T, D], base?.normed);
    this.qkv = tensor("vit.qkv", [T, 3 * D], base?.qkv);
    this.q = tensor("vit.q", [T, D], base?.q);
    this.k = tensor("vit.k", [T, D], base?.k);
    this.v = tensor("vit.v", [T, D], base?.v);
    this.qNormed = tensor("vit.q_normed", [T, D], base?.qNormed);
    this.kNormed = tensor("vit.k_normed", [T, D], base?.kNormed);
    this.attn = tensor("vit.attn", [T, D], base?.attn);
    this.proj = tensor("vit.proj", [T, D], base?.proj);
    this.mlp = tensor("vit.mlp", [T, I], base?.mlp);
    this.mlpAct = tensor("vit.mlp_act", [T, I], base?.mlpAct);
    // The LLM.int8 scratch serves any token count up to the one it was built for.
    this.llmInt8 = base ? base.llmInt8 : llmInt8GemmFor(
      matmul,
      () => new LlmInt8Scratch(gpu, "vit.llm_int8", T, Math.max(D, I), Math.max(3 * D, I), visionOutlierCap),
    );
  }

  /** This scratch for `tiles` ≤ this.tiles: the front of the same buffers, so destroy this one, not it. */
  forTiles(tiles: number): VisionScratch {
    if (!(Number.isInteger(tiles) && tiles >= 1 && tiles <= this.tiles)) {
      throw new Error(`VisionScratch for ${this.tiles} tiles cannot serve ${tiles}`);
    }
    return tiles === this.tiles ? this : new VisionScratch(this.gpu, this.dims, tiles, this.matmul, this);
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
    return [
      this.patches,
      this.patchEmbeds,
      this.hidden,
      this.normed,
      this.qkv,
      this.q,
      this.k,
      this.v,
      this.qNormed,
      this.kNormed,
      this.attn,
      this.proj,
      this.mlp,
      this.mlpAct,
    ];
  }
}

/**
 * A hook to look at any intermediate (tests compare them with the reference's); free when absent.
 * It runs while the work is being recorded: record a copy into `r` to see the value at that point.
 */
export type Tap = (name: string, layer: number, t: Tensor, r: Recorder) => void;

/**
 * A tap that copies every intermediate `wanted` picks, as [rows, width] f32, into a fresh tensor at the point
 * the pass reaches it: `taken` maps `name:layer` to the copy, in the pass's order (read the copies once the
 * work has run; they are the caller's to destroy). Tests compare them with the reference's; the bench's
 * logits check hands them to PyTorch.
 */
export function snapshotTap(
  gpu: Gpu,
  wanted: (name: string, layer: number) => boolean,
): { tap: Tap; taken: Map<string, Tensor> } {
  const taken = new Map<string, Tensor>();
  const tap: Tap = (name, layer, t, r) => {
    if (!wanted(name, layer)) return;
    const width = t.shape[t.shape.length - 1];
    const flat = reshape(t, [t.numel / width, width]);
    const copy = gpu.createTensor(`tap.${name}.${layer}`, "f32", flat.shape);
    copyRows(r, flat, 0, copy);
    taken.set(`${name}:${layer}`, copy);
  };
  return { tap, taken };
}

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
  visionEmbeddings(r, w, s, pixels, tap);
  visionLayers(r, w, s, 0, w.layers.length, tap);
}

/** pixels: [N, 3, S, S] f32 normalised tiles → s.hidden: [N, P²+1, D], the encoder layers' input. */
export function visionEmbeddings(
  r: Recorder,
  w: VisionWeights,
  s: VisionScratch,
  pixels: Tensor,
  tap?: Tap,
): void {
  const { hidden: D, patchSize, patchesPerSide: P } = s.dims;
  const N = s.tiles, T = P * P + 1;
  patchify(r, pixels, s.patches, patchSize);
  linear(r, reshape(s.patches, [N * P * P, 3 * patchSize * patchSize]), w.patchEmbedding, s.patchEmbeds);
  const hidden3 = reshape(s.hidden, [N, T, D]);
  vitEmbeddings(r, reshape(s.patchEmbeds, [N, P * P, D]), w.classEmbedding, w.positionEmbedding, hidden3);
  tap?.("vit.embeddings", -1, s.hidden, r);
}

/**
 * Encoder layers from … to−1 on s.hidden in place: a pass may be recorded in parts (src/model/image_encoding.ts
 * submits a few layers at a time).
 */
export function visionLayers(
  r: Recorder,
  w: VisionWeights,
  s: VisionScratch,
  from: number,
  to: number,
  tap?: Tap,
): void {
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= w.layers.length)) {
    throw new Error(`visionLayers: layers ${from}…${to - 1} are not within the encoder's ${w.layers.length}`);
  }
  const { headDim, heads, patchesPerSide: P, eps } = s.dims;
  const N = s.tiles, T = P * P + 1;
  const o = { llmInt8: s.llmInt8 }; // INT8_MATMUL=llm-int8: the int8 linears through LLM.int8
  w.layers.slice(from, to).forEach((lw, i) => {
    const l = from + i;
    // x = x + ls1 * attn(norm1(x))
    rmsNorm(r, s.hidden, lw.norm1, s.normed, eps);
    linear(r, s.normed, lw.qkv, s.qkv, o);
    splitVitQkv(r, s.qkv, s.q, s.k, s.v);
    // qk_normalization: RMSNorm over all heads of q (and k) before the head split.
    rmsNorm(r, s.q, lw.qNorm, s.qNormed, eps);
    rmsNorm(r, s.k, lw.kNorm, s.kNormed, eps);
    // A CPU adapter (llvmpipe: the CI host) runs attentionFull's tiles slowly; rows held in registers ran 5×
    // faster there (0.15 against 0.77 s a call at the tiny fixture's tile, src/ops/attention_full_rows.ts).
    const attention = r.fallbackAdapter && queryRowsHold(headDim) ? attentionFullRows : attentionFull;
    attention(r, s.qNormed, s.kNormed, s.v, s.attn, { batch: N, tokens: T, numHeads: heads, headDim });
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
