// Random-weight InternVL models built directly as the model's weight records (VisionWeights,
// ProjectorWeights, LanguageWeights), every tensor filled ON THE GPU by kernels/fill_random.wgsl:
// the 26 GB int8 model never passes through the CPU, and the benchmark runs the real forward code.
// Magnitudes keep activations O(1) through every layer (so no kernel sees NaN/Inf and the logits
// comparison with PyTorch is meaningful): int8 values are uniform in −127..127 (σ ≈ 73.3) and each row's
// scale is ~1/(73.3·√K), so W has σ ≈ 1/√K like a trained layer's.
import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { DType, Tensor } from "../gpu/tensor.ts";
import type { LinearWeights } from "../ops/linear.ts";
import { fillRandom } from "../ops/fill_random.ts";
import { uploadRopeTables } from "../ops/rope.ts";
import type { LanguageDims, ProjectorDims, VisionDims } from "../model/dims.ts";
import type { VisionLayerWeights, VisionWeights } from "../model/vision.ts";
import type { ProjectorWeights } from "../model/projector.ts";
import type { LanguageLayerWeights, LanguageWeights } from "../model/language.ts";
import { tinyShapes } from "./shapes.ts";

const int8Sigma = 73.3; // σ of the uniform integers −127..127

/** FNV-1a of the label mixed with the base seed: every tensor gets its own reproducible stream. */
export function tensorSeed(base: number, label: string): number {
  let h = 0x811c9dc5 ^ base;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/** Creates tensors and records their random fills into one Recorder; tracks bytes for the report. */
export class SyntheticFactory {
  bytes = 0;
  tensors = 0;
  readonly created: Tensor[] = [];

  constructor(readonly gpu: Gpu, readonly r: Recorder, readonly seed: number) {}

  tensor(label: string, dtype: DType, shape: number[], lo?: number, hi?: number): Tensor {
    const t = this.gpu.createTensor(label, dtype, shape);
    fillRandom(this.r, t, { seed: tensorSeed(this.seed, label), lo, hi });
    this.bytes += t.byteLength;
    this.tensors++;
    this.created.push(t);
    return t;
  }

  /** A norm weight near 1. */
  norm(label: string, n: number): Tensor {
    return this.tensor(label, "f32", [n], 0.8, 1.2);
  }

  /** An int8 Linear (bitsandbytes layout: [N, K] int8 + per-row scale = SCB/127) with optional bias. */
  int8Linear(label: string, N: number, K: number, bias = false): LinearWeights {
    const s = 1 / (int8Sigma * Math.sqrt(K));
    return {
      kind: "int8",
      weight: this.tensor(`${label}.weight`, "i8x4", [N, K]),
      scale: this.tensor(`${label}.scale`, "f32", [N], 0.5 * s, 1.5 * s),
      bias: bias ? this.tensor(`${label}.bias`, "f32", [N], -0.02, 0.02) : null,
    };
  }

  /** A float Linear with σ = 1/√K (uniform ±√3/√K). */
  f32Linear(label: string, N: number, K: number, bias = false): LinearWeights {
    const a = Math.sqrt(3 / K);
    return {
      kind: "f32",
      weight: this.tensor(`${label}.weight`, "f32", [N, K], -a, a),
      bias: bias ? this.tensor(`${label}.bias`, "f32", [N], -0.02, 0.02) : null,
    };
  }

  destroyAll(): void {
    for (const t of this.created) t.buffer.destroy();
    this.created.length = 0;
  }
}

/** InternViT weights (REFERENCE §2: qkv/proj/fc1/fc2 int8; patch embedding, norms, ls, embeddings float). */
export function syntheticVisionWeights(f: SyntheticFactory, dims: VisionDims): VisionWeights {
  const { hidden: D, patchSize: p, patchesPerSide: P, intermediate: I } = dims;
  const pre = "vision_model";
  const layers: VisionLayerWeights[] = [];
  for (let l = 0; l < dims.layers; l++) {
    const n = `${pre}.encoder.layers.${l}`;
    layers.push({
      norm1: f.norm(`${n}.norm1`, D),
      qkv: f.int8Linear(`${n}.attn.qkv`, 3 * D, D),
      qNorm: f.norm(`${n}.attn.q_norm`, D),
      kNorm: f.norm(`${n}.attn.k_norm`, D),
      proj: f.int8Linear(`${n}.attn.proj`, D, D, true),
      ls1: f.tensor(`${n}.ls1`, "f32", [D], 0.05, 0.15),
      norm2: f.norm(`${n}.norm2`, D),
      fc1: f.int8Linear(`${n}.mlp.fc1`, I, D, true),
      fc2: f.int8Linear(`${n}.mlp.fc2`, D, I, true),
      ls2: f.tensor(`${n}.ls2`, "f32", [D], 0.05, 0.15),
    });
  }
  return {
    patchEmbedding: f.f32Linear(`${pre}.embeddings.patch_embedding`, D, 3 * p * p, true),
    classEmbedding: f.tensor(`${pre}.embeddings.class_embedding`, "f32", [D], -0.5, 0.5),
    positionEmbedding: f.tensor(`${pre}.embeddings.position_embedding`, "f32", [P * P + 1, D], -0.5, 0.5),
    layers,
  };
}

/** mlp1: LayerNorm, Linear (int8), GELU, Linear (mlp1.3 stays float in the -Int8 checkpoint). */
export function syntheticProjectorWeights(f: SyntheticFactory, dims: ProjectorDims): ProjectorWeights {
  return {
    norm: {
      weight: f.norm("mlp1.0.weight", dims.inFeatures),
      bias: f.tensor("mlp1.0.bias", "f32", [dims.inFeatures], -0.1, 0.1),
    },
    fc1: f.int8Linear("mlp1.1", dims.hidden, dims.inFeatures, true),
    fc2: f.f32Linear("mlp1.3", dims.hidden, dims.hidden, true),
  };
}

/**
 * InternLM2 weights: every Linear int8 including the head (REFERENCE §2), bf16 embeddings.
 * `layers` overrides dims.layers (the logits comparison uses a 2-layer model of real width).
 * The rope tables are computed on the CPU like the real loader does (they are not weights).
 */
export function syntheticLanguageWeights(f: SyntheticFactory, dims: LanguageDims): LanguageWeights {
  const { hidden: D, vocab: V, heads: H, kvHeads: Hkv, headDim: Dh, intermediate: I } = dims;
  const pre = "language_model.model";
  const layers: LanguageLayerWeights[] = [];
  for (let l = 0; l < dims.layers; l++) {
    const n = `${pre}.layers.${l}`;
    layers.push({
      attentionNorm: f.norm(`${n}.attention_norm`, D),
      wqkv: f.int8Linear(`${n}.attention.wqkv`, (H + 2 * Hkv) * Dh, D),
      wo: f.int8Linear(`${n}.attention.wo`, D, H * Dh),
      ffnNorm: f.norm(`${n}.ffn_norm`, D),
      w1: f.int8Linear(`${n}.feed_forward.w1`, I, D),
      w3: f.int8Linear(`${n}.feed_forward.w3`, I, D),
      w2: f.int8Linear(`${n}.feed_forward.w2`, D, I),
    });
  }
  const rope = uploadRopeTables(f.gpu, dims.ropeTheta, Dh, dims.maxPositions);
  f.created.push(rope.ropeCos, rope.ropeSin, rope.ropeCosSin);
  return {
    embed: f.tensor(`${pre}.tok_embeddings`, "bf16x2", [V, D], -1, 1),
    layers,
    norm: f.norm(`${pre}.norm`, D),
    output: f.int8Linear("language_model.output", V, D),
    ...rope,
  };
}

/** Bytes of int8 weights, scales and everything else, for the report (independent of the GPU). */
export function linearBytes(w: LinearWeights): number {
  return w.weight.byteLength + (w.kind === "int8" ? w.scale.byteLength : 0) + (w.bias?.byteLength ?? 0);
}

/**
 * A language model of `layers` layers at the tiny shapes' widths, its weights random and filled on the GPU:
 * the CPU probes' model (recording and encoding depend on the dispatches, not on their sizes).
 */
export async function syntheticTinyWidthLanguage(
  gpu: Gpu,
  layers: number,
): Promise<{ dims: LanguageDims; weights: LanguageWeights }> {
  const dims = { ...tinyShapes.language, layers };
  const fill = gpu.recorder("fill");
  const weights = syntheticLanguageWeights(new SyntheticFactory(gpu, fill, 1), dims);
  fill.submit();
  await gpu.sync("fill");
  return { dims, weights };
}
