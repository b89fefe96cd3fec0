/**
 * `config.json` (InternVLChatConfig with nested InternVisionConfig and InternLM2Config) → one typed,
 * derived ModelConfig. Defaults for absent keys follow the reference Python config classes
 * (OpenGVLab/InternVL `configuration_internvl_chat.py`, `configuration_intern_vit.py`,
 * `configuration_internlm2.py`), so a sparse config means what it means in PyTorch.
 * Unknown keys (HF configs carry dozens: id2label, auto_map, …) are ignored.
 */
import { join } from "node:path";
import { z } from "zod";
import { ModelFileError } from "./model_file_error.ts";

export interface VisionConfig {
  hiddenSize: number;
  numHeads: number;
  /** hiddenSize / numHeads. */
  headDim: number;
  numLayers: number;
  intermediateSize: number;
  normType: "rms_norm" | "layer_norm";
  layerNormEps: number;
  /** RMSNorm over the full q and k rows before the head split (`q_norm`, `k_norm`). */
  qkNormalization: boolean;
  qkvBias: boolean;
  /** `vision_config.image_size`: the grid the position embedding was trained for. */
  imageSize: number;
  patchSize: number;
  /** imageSize / patchSize (32 for 448/14). */
  patchesPerSide: number;
  hiddenAct: string;
}

export interface LlmConfig {
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  /** hiddenSize / numHeads (InternLM2 has no separate head_dim key). */
  headDim: number;
  numLayers: number;
  intermediateSize: number;
  vocabSize: number;
  ropeTheta: number;
  ropeScaling: { type: "linear" | "dynamic"; factor: number } | null;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number | null;
  tieWordEmbeddings: boolean;
  /** InternLM2 `bias`: whether wqkv/wo/w1/w2/w3 carry biases. */
  bias: boolean;
  hiddenAct: string;
}

export interface TilingConfig {
  dynamicImageSize: boolean;
  useThumbnail: boolean;
  minDynamicPatch: number;
  maxDynamicPatch: number;
  /** Tile side in pixels: `force_image_size or vision_config.image_size`, as the reference model does. */
  imageSize: number;
}

export interface QuantizationConfig {
  /** What config.json declares; the loader still decides per tensor from dtype + `.SCB` presence. */
  method: "bitsandbytes-int8" | "none";
  /** bitsandbytes outlier threshold (6.0 by default); only meaningful for method bitsandbytes-int8. */
  llmInt8Threshold?: number;
}

export interface ModelConfig {
  vision: VisionConfig;
  llm: LlmConfig;
  downsampleRatio: number;
  psVersion: "v1" | "v2";
  /** Index into the ViT hidden states (embeddings + one per layer); -1 = last layer. */
  selectLayer: number;
  template: string | null;
  /** LLM tokens per image tile: (tiling.imageSize / patchSize)² · downsampleRatio² (256 for V1.5). */
  numImageToken: number;
  tiling: TilingConfig;
  quantization: QuantizationConfig;
}

// One message per kind of value, so errors read "must be a positive integer, got "abc"".
function positiveInt() {
  const e = { error: "must be a positive integer" };
  return z.number(e).int(e).positive(e);
}
function nonNegativeInt() {
  const e = { error: "must be a non-negative integer" };
  return z.number(e).int(e).nonnegative(e);
}
function integer() {
  const e = { error: "must be an integer" };
  return z.number(e).int(e);
}
function positiveNumber() {
  const e = { error: "must be a positive number" };
  return z.number(e).positive(e);
}
function bool() {
  return z.boolean({ error: "must be true or false" });
}
function str() {
  return z.string({ error: "must be a string" });
}
function obj<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.object(shape, { error: "must be an object" });
}

// InternVisionConfig.__init__ defaults (InternViT-6B: 48 layers, 224 px).
const visionSchema = obj({
  hidden_size: positiveInt().default(3200),
  num_attention_heads: positiveInt().default(25),
  num_hidden_layers: positiveInt().default(48),
  intermediate_size: positiveInt().default(12800),
  norm_type: z.enum(["rms_norm", "layer_norm"], { error: 'must be "rms_norm" or "layer_norm"' })
    .default("rms_norm"),
  layer_norm_eps: positiveNumber().default(1e-6),
  qk_normalization: bool().default(true),
  qkv_bias: bool().default(false),
  image_size: positiveInt().default(224),
  patch_size: positiveInt().default(14),
  hidden_act: str().default("gelu"),
});

// InternLM2Config.__init__ defaults (InternLM2-7B-like); num_key_value_heads None ⇒ num_attention_heads.
const llmSchema = obj({
  vocab_size: positiveInt().default(103168),
  hidden_size: positiveInt().default(4096),
  intermediate_size: positiveInt().default(11008),
  num_hidden_layers: positiveInt().default(32),
  num_attention_heads: positiveInt().default(32),
  num_key_value_heads: positiveInt().nullable().default(null),
  hidden_act: str().default("silu"),
  max_position_embeddings: positiveInt().default(2048),
  rms_norm_eps: positiveNumber().default(1e-6),
  pad_token_id: nonNegativeInt().nullable().default(0),
  bos_token_id: nonNegativeInt().default(1),
  eos_token_id: nonNegativeInt().default(2),
  tie_word_embeddings: bool().default(false),
  bias: bool().default(true),
  rope_theta: positiveNumber().default(10000),
  // InternLM2Config._rope_scaling_validation: type linear|dynamic, float factor >= 1.
  rope_scaling: obj({
    type: z.enum(["linear", "dynamic"], { error: 'must be "linear" or "dynamic"' }),
    factor: z.number({ error: "must be a number >= 1" }).min(1, { error: "must be a number >= 1" }),
  }).nullable().default(null),
});

// transformers' BitsAndBytesConfig.to_dict(); only the keys that change how weights are read.
const quantizationSchema = obj({
  quant_method: str().default("bitsandbytes"),
  load_in_8bit: bool().default(false),
  load_in_4bit: bool().default(false),
  llm_int8_threshold: z.number({ error: "must be a number" }).default(6.0),
});

// InternVLChatConfig.__init__ defaults.
const chatSchema = obj({
  // DIFF: Python falls back to `{}` (InternViT-6B / InternLM2-7B defaults) with a log line; a V1.5
  // checkpoint never matches those, so a missing sub-config is an error here.
  vision_config: visionSchema,
  llm_config: llmSchema,
  select_layer: integer().default(-1),
  force_image_size: positiveInt().nullable().default(null),
  downsample_ratio: z.number({ error: "must be a number in (0, 1]" })
    .positive({ error: "must be a number in (0, 1]" }).max(1, { error: "must be a number in (0, 1]" })
    .default(0.5),
  template: str().nullable().default(null),
  dynamic_image_size: bool().default(false),
  use_thumbnail: bool().default(false),
  ps_version: z.enum(["v1", "v2"], { error: 'must be "v1" or "v2"' }).default("v1"),
  min_dynamic_patch: positiveInt().default(1),
  max_dynamic_patch: positiveInt().default(6),
  quantization_config: quantizationSchema.nullable().default(null),
});

/** Reads and parses `<dir>/config.json`. */
export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ModelFileError(
        `No config.json in ${dir}; point the model directory at an HF checkpoint`,
        path,
      );
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(`${path} is not valid JSON: ${(err as Error).message}`, path);
  }
  return parseModelConfig(json, path);
}

/**
 * Validates an InternVLChatConfig object and derives the sizes the engine needs.
 * `source` prefixes error messages (the file name or path).
 */
export function parseModelConfig(json: unknown, source = "config.json"): ModelConfig {
  const parsed = chatSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map(String).join(".");
    const value = valueAt(json, issue.path);
    const what = value === undefined ? "is missing" : `${issue.message}, got ${show(value)}`;
    throw new ModelFileError(`${source}: ${path || "the top level"} ${what}`, source);
  }
  const c = parsed.data;
  const v = c.vision_config;
  const l = c.llm_config;
  const fail = (message: string) => new ModelFileError(`${source}: ${message}`, source);
  const divisible = (aKey: string, a: number, bKey: string, b: number) => {
    if (a % b !== 0) throw fail(`${aKey} ${a} is not divisible by ${bKey} ${b}`);
  };

  divisible(
    "vision_config.hidden_size",
    v.hidden_size,
    "vision_config.num_attention_heads",
    v.num_attention_heads,
  );
  divisible("vision_config.image_size", v.image_size, "vision_config.patch_size", v.patch_size);
  divisible("llm_config.hidden_size", l.hidden_size, "llm_config.num_attention_heads", l.num_attention_heads);
  const numKvHeads = l.num_key_value_heads ?? l.num_attention_heads;
  divisible(
    "llm_config.num_attention_heads",
    l.num_attention_heads,
    "llm_config.num_key_value_heads",
    numKvHeads,
  );
  const llmHeadDim = l.hidden_size / l.num_attention_heads;
  // RoPE rotates pairs (i, i + headDim/2).
  if (llmHeadDim % 2 !== 0) {
    throw fail(`llm_config head dim ${llmHeadDim} (hidden_size / heads) must be even`);
  }

  const tileSize = c.force_image_size ?? v.image_size;
  divisible(
    c.force_image_size === null ? "vision_config.image_size" : "force_image_size",
    tileSize,
    "vision_config.patch_size",
    v.patch_size,
  );
  // Pixel shuffle turns a (side × side × C) grid into (side·r × side·r × C/r²); the reference truncates
  // both with int(), which would silently scramble features, so both must be exact here.
  const side = tileSize / v.patch_size;
  const r = c.downsample_ratio;
  if (!Number.isInteger(side * r) || !Number.isInteger(v.hidden_size / (r * r))) {
    throw fail(
      `downsample_ratio ${r} does not evenly divide the ${side}×${side} patch grid and ` +
        `${v.hidden_size} channels`,
    );
  }
  // hidden_states has num_hidden_layers + 1 entries (embeddings first); Python indexing allows negatives.
  if (c.select_layer < -(v.num_hidden_layers + 1) || c.select_layer > v.num_hidden_layers) {
    throw fail(`select_layer ${c.select_layer} is out of range for ${v.num_hidden_layers} vision layers`);
  }
  if (c.min_dynamic_patch > c.max_dynamic_patch) {
    throw fail(
      `min_dynamic_patch ${c.min_dynamic_patch} is larger than max_dynamic_patch ${c.max_dynamic_patch}`,
    );
  }
  for (const key of ["bos_token_id", "eos_token_id", "pad_token_id"] as const) {
    const id = l[key];
    if (id !== null && id >= l.vocab_size) {
      throw fail(`llm_config.${key} ${id} is outside the vocabulary (vocab_size ${l.vocab_size})`);
    }
  }

  return {
    vision: {
      hiddenSize: v.hidden_size,
      numHeads: v.num_attention_heads,
      headDim: v.hidden_size / v.num_attention_heads,
      numLayers: v.num_hidden_layers,
      intermediateSize: v.intermediate_size,
      normType: v.norm_type,
      layerNormEps: v.layer_norm_eps,
      qkNormalization: v.qk_normalization,
      qkvBias: v.qkv_bias,
      imageSize: v.image_size,
      patchSize: v.patch_size,
      patchesPerSide: v.image_size / v.patch_size,
      hiddenAct: v.hidden_act,
    },
    llm: {
      hiddenSize: l.hidden_size,
      numHeads: l.num_attention_heads,
      numKvHeads,
      headDim: llmHeadDim,
      numLayers: l.num_hidden_layers,
      intermediateSize: l.intermediate_size,
      vocabSize: l.vocab_size,
      ropeTheta: l.rope_theta,
      ropeScaling: l.rope_scaling,
      maxPositionEmbeddings: l.max_position_embeddings,
      rmsNormEps: l.rms_norm_eps,
      bosTokenId: l.bos_token_id,
      eosTokenId: l.eos_token_id,
      padTokenId: l.pad_token_id,
      tieWordEmbeddings: l.tie_word_embeddings,
      bias: l.bias,
      hiddenAct: l.hidden_act,
    },
    downsampleRatio: r,
    psVersion: c.ps_version,
    selectLayer: c.select_layer,
    template: c.template,
    numImageToken: (side * r) ** 2,
    tiling: {
      dynamicImageSize: c.dynamic_image_size,
      useThumbnail: c.use_thumbnail,
      minDynamicPatch: c.min_dynamic_patch,
      maxDynamicPatch: c.max_dynamic_patch,
      imageSize: tileSize,
    },
    quantization: parseQuantization(c.quantization_config, fail),
  };
}

function parseQuantization(
  q: z.infer<typeof quantizationSchema> | null,
  fail: (message: string) => ModelFileError,
): QuantizationConfig {
  if (q === null) return { method: "none" };
  if (q.quant_method !== "bitsandbytes") {
    throw fail(
      `quantization_config.quant_method ${show(q.quant_method)} is not supported; ` +
        "only bitsandbytes LLM.int8 (load_in_8bit) checkpoints can be loaded",
    );
  }
  if (q.load_in_4bit) {
    throw fail("quantization_config.load_in_4bit is true; 4-bit bitsandbytes checkpoints are not supported");
  }
  return q.load_in_8bit
    ? { method: "bitsandbytes-int8", llmInt8Threshold: q.llm_int8_threshold }
    : { method: "none" };
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
