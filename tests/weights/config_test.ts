import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModelConfig, parseModelConfig } from "../../src/weights/config.ts";
import { ModelFileError } from "../../src/weights/model_file_error.ts";
import { FIXTURE_MODEL_DIR, withTempDir } from "./safetensors_files.ts";

const manifest = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/tiny-internvl/goldens/manifest.json", import.meta.url)),
);
const fixtureJson = JSON.parse(await Deno.readTextFile(join(FIXTURE_MODEL_DIR, "config.json")));

// Edits poke into arbitrary nested keys of free-form JSON; typing each path would only add noise.
// deno-lint-ignore no-explicit-any
type JsonObject = Record<string, any>;

/** A deep copy of the fixture config.json with one edit applied. */
function fixtureWith(edit: (c: JsonObject) => void): unknown {
  const copy = structuredClone(fixtureJson);
  edit(copy);
  return copy;
}

Deno.test("loadModelConfig reads the fixture config with the manifest's model dimensions", async () => {
  const config = await loadModelConfig(FIXTURE_MODEL_DIR);
  const m = manifest.model;
  assert.equal(config.llm.hiddenSize, m.llm.hidden_size);
  assert.equal(config.llm.numHeads, m.llm.num_attention_heads);
  assert.equal(config.llm.numKvHeads, m.llm.num_key_value_heads);
  assert.equal(config.llm.numLayers, m.llm.num_hidden_layers);
  assert.equal(config.llm.intermediateSize, m.llm.intermediate_size);
  assert.equal(config.llm.ropeTheta, m.llm.rope_theta);
  assert.deepEqual(config.llm.ropeScaling, m.llm.rope_scaling);
  assert.equal(config.llm.maxPositionEmbeddings, m.llm.max_position_embeddings);
  assert.equal(config.llm.vocabSize, m.vocab_size);
  assert.equal(config.vision.hiddenSize, m.vision.hidden_size);
  assert.equal(config.vision.numHeads, m.vision.num_attention_heads);
  assert.equal(config.vision.numLayers, m.vision.num_hidden_layers);
  assert.equal(config.vision.intermediateSize, m.vision.intermediate_size);
  assert.equal(config.numImageToken, m.num_image_token);
  assert.equal(config.template, m.template);

  // Derived and copied values of the V1.5 structure (README: image 448, patch 14, ps v2, tiling).
  assert.deepEqual(
    [config.vision.headDim, config.vision.patchesPerSide, config.vision.imageSize, config.vision.patchSize],
    [32, 32, 448, 14],
  );
  assert.equal(config.vision.normType, "rms_norm");
  assert.equal(config.vision.layerNormEps, 1e-6);
  assert.equal(config.vision.qkNormalization, true);
  assert.equal(config.vision.qkvBias, false);
  assert.equal(config.vision.hiddenAct, "gelu");
  assert.equal(config.llm.headDim, 16);
  assert.equal(config.llm.rmsNormEps, 1e-5);
  assert.deepEqual([config.llm.bosTokenId, config.llm.eosTokenId, config.llm.padTokenId], [1, 2, 2]);
  assert.equal(config.llm.tieWordEmbeddings, false);
  assert.equal(config.llm.bias, false);
  assert.equal(config.downsampleRatio, 0.5);
  assert.equal(config.psVersion, "v2");
  assert.equal(config.selectLayer, -1);
  assert.deepEqual(config.tiling, {
    dynamicImageSize: true,
    useThumbnail: true,
    minDynamicPatch: 1,
    maxDynamicPatch: 12,
    imageSize: 448,
  });
  assert.deepEqual(config.quantization, { method: "bitsandbytes-int8", llmInt8Threshold: 6 });
});

Deno.test("parseModelConfig applies the reference Python defaults to absent keys", () => {
  const config = parseModelConfig({ vision_config: {}, llm_config: {} });
  // InternVisionConfig defaults.
  assert.deepEqual(config.vision, {
    hiddenSize: 3200,
    numHeads: 25,
    headDim: 128,
    numLayers: 48,
    intermediateSize: 12800,
    normType: "rms_norm",
    layerNormEps: 1e-6,
    qkNormalization: true,
    qkvBias: false,
    imageSize: 224,
    patchSize: 14,
    patchesPerSide: 16,
    hiddenAct: "gelu",
  });
  // InternLM2Config defaults; num_key_value_heads None means "same as num_attention_heads".
  assert.deepEqual(config.llm, {
    hiddenSize: 4096,
    numHeads: 32,
    numKvHeads: 32,
    headDim: 128,
    numLayers: 32,
    intermediateSize: 11008,
    vocabSize: 103168,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 2048,
    rmsNormEps: 1e-6,
    bosTokenId: 1,
    eosTokenId: 2,
    padTokenId: 0,
    tieWordEmbeddings: false,
    bias: true,
    hiddenAct: "silu",
  });
  // InternVLChatConfig defaults: no force_image_size ⇒ tiles are the vision image_size.
  assert.equal(config.psVersion, "v1");
  assert.equal(config.selectLayer, -1);
  assert.equal(config.template, null);
  assert.equal(config.numImageToken, 64);
  assert.deepEqual(config.tiling, {
    dynamicImageSize: false,
    useThumbnail: false,
    minDynamicPatch: 1,
    maxDynamicPatch: 6,
    imageSize: 224,
  });
  assert.deepEqual(config.quantization, { method: "none" });
});

Deno.test("parseModelConfig derives the real V1.5 sizes from REFERENCE.md section 1", () => {
  const config = parseModelConfig({
    force_image_size: 448,
    downsample_ratio: 0.5,
    ps_version: "v2",
    template: "internlm2-chat",
    vision_config: { hidden_size: 3200, num_attention_heads: 25, num_hidden_layers: 45, image_size: 448 },
    llm_config: {
      hidden_size: 6144,
      num_attention_heads: 48,
      num_key_value_heads: 8,
      num_hidden_layers: 48,
      intermediate_size: 16384,
      vocab_size: 92553,
      rope_theta: 1000000,
      rope_scaling: { type: "dynamic", factor: 2.0 },
      max_position_embeddings: 32768,
    },
    quantization_config: { quant_method: "bitsandbytes", load_in_8bit: true },
  });
  assert.equal(config.numImageToken, 256);
  assert.equal(config.vision.headDim, 128);
  assert.equal(config.llm.headDim, 128);
  assert.equal(config.llm.numHeads / config.llm.numKvHeads, 6);
  assert.equal(config.quantization.method, "bitsandbytes-int8");
});

Deno.test("force_image_size overrides the tile size but not the vision position grid", () => {
  const config = parseModelConfig({
    force_image_size: 448,
    vision_config: { image_size: 224 },
    llm_config: {},
  });
  assert.equal(config.tiling.imageSize, 448);
  assert.equal(config.vision.imageSize, 224);
  assert.equal(config.vision.patchesPerSide, 16);
  assert.equal(config.numImageToken, 256);
});

Deno.test("quantization_config without load_in_8bit means unquantized", () => {
  const config = parseModelConfig(fixtureWith((c) => c.quantization_config.load_in_8bit = false));
  assert.deepEqual(config.quantization, { method: "none" });
  const none = parseModelConfig(fixtureWith((c) => delete c.quantization_config));
  assert.deepEqual(none.quantization, { method: "none" });
});

Deno.test("parseModelConfig rejects bad configs with the field path and value in the message", async (t) => {
  const cases: [string, (c: JsonObject) => void, string][] = [
    [
      "a non-integer head count",
      (c) => c.llm_config.num_attention_heads = "abc",
      'config.json: llm_config.num_attention_heads must be a positive integer, got "abc"',
    ],
    [
      "a zero hidden size",
      (c) => c.vision_config.hidden_size = 0,
      "config.json: vision_config.hidden_size must be a positive integer, got 0",
    ],
    [
      "a fractional layer count",
      (c) => c.llm_config.num_hidden_layers = 2.5,
      "config.json: llm_config.num_hidden_layers must be a positive integer, got 2.5",
    ],
    [
      "an unknown norm type",
      (c) => c.vision_config.norm_type = "batch_norm",
      'config.json: vision_config.norm_type must be "rms_norm" or "layer_norm", got "batch_norm"',
    ],
    [
      "a boolean given as a string",
      (c) => c.vision_config.qk_normalization = "yes",
      'config.json: vision_config.qk_normalization must be true or false, got "yes"',
    ],
    ["a missing llm_config", (c) => delete c.llm_config, "config.json: llm_config is missing"],
    [
      "a vision_config that is not an object",
      (c) => c.vision_config = 5,
      "config.json: vision_config must be an object, got 5",
    ],
    [
      "a rope scaling factor below 1",
      (c) => c.llm_config.rope_scaling.factor = 0.5,
      "config.json: llm_config.rope_scaling.factor must be a number >= 1, got 0.5",
    ],
    [
      "an unknown rope scaling type",
      (c) => c.llm_config.rope_scaling.type = "yarn",
      'config.json: llm_config.rope_scaling.type must be "linear" or "dynamic", got "yarn"',
    ],
    [
      "an unknown ps_version",
      (c) => c.ps_version = "v3",
      'config.json: ps_version must be "v1" or "v2", got "v3"',
    ],
    [
      "a downsample ratio above 1",
      (c) => c.downsample_ratio = 2,
      "config.json: downsample_ratio must be a number in (0, 1], got 2",
    ],
    [
      "vision heads that do not divide the hidden size",
      (c) => c.vision_config.num_attention_heads = 3,
      "config.json: vision_config.hidden_size 64 is not divisible by vision_config.num_attention_heads 3",
    ],
    [
      "kv heads that do not divide the heads",
      (c) => c.llm_config.num_key_value_heads = 3,
      "config.json: llm_config.num_attention_heads 4 is not divisible by llm_config.num_key_value_heads 3",
    ],
    [
      "an image size that is not a multiple of the patch size",
      (c) => c.force_image_size = 450,
      "config.json: force_image_size 450 is not divisible by vision_config.patch_size 14",
    ],
    [
      "a downsample ratio that does not divide the patch grid",
      (c) => c.downsample_ratio = 0.3,
      "config.json: downsample_ratio 0.3 does not evenly divide the 32×32 patch grid and 64 channels",
    ],
    [
      "a select_layer beyond the vision depth",
      (c) => c.select_layer = 3,
      "config.json: select_layer 3 is out of range for 2 vision layers",
    ],
    [
      "min_dynamic_patch above max_dynamic_patch",
      (c) => c.min_dynamic_patch = 13,
      "config.json: min_dynamic_patch 13 is larger than max_dynamic_patch 12",
    ],
    [
      "an eos id outside the vocabulary",
      (c) => c.llm_config.eos_token_id = 809,
      "config.json: llm_config.eos_token_id 809 is outside the vocabulary (vocab_size 809)",
    ],
    [
      "a 4-bit quantization config",
      (c) => c.quantization_config.load_in_4bit = true,
      "config.json: quantization_config.load_in_4bit is true; 4-bit bitsandbytes checkpoints are not supported",
    ],
    [
      "a non-bitsandbytes quantization method",
      (c) => c.quantization_config.quant_method = "gptq",
      'config.json: quantization_config.quant_method "gptq" is not supported; only bitsandbytes LLM.int8 ' +
      "(load_in_8bit) checkpoints can be loaded",
    ],
  ];
  for (const [what, edit, message] of cases) {
    await t.step(what, () => {
      assert.throws(() => parseModelConfig(fixtureWith(edit)), (err: unknown) => {
        assert.ok(err instanceof ModelFileError);
        assert.equal(err.message, message);
        return true;
      });
    });
  }
  await t.step("a top level that is not an object", () => {
    assert.throws(() => parseModelConfig([1]), {
      message: "config.json: the top level must be an object, got [1]",
    });
  });
});

Deno.test("loadModelConfig names the directory when config.json is missing or not JSON", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(loadModelConfig(dir), {
      name: "ModelFileError",
      message: `No config.json in ${dir}; point the model directory at an HF checkpoint`,
    });
    await Deno.writeTextFile(join(dir, "config.json"), "{not json");
    await assert.rejects(loadModelConfig(dir), (err: Error) => {
      assert.match(err.message, new RegExp(`^${join(dir, "config.json")} is not valid JSON: `));
      return true;
    });
    // A value error from a file is prefixed with the file's path.
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ vision_config: {}, llm_config: { vocab_size: -1 } }),
    );
    await assert.rejects(loadModelConfig(dir), {
      message: `${join(dir, "config.json")}: llm_config.vocab_size must be a positive integer, got -1`,
    });
  });
});
