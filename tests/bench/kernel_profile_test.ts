import assert from "node:assert/strict";
import { Gpu } from "../../src/gpu/device.ts";
import { dispatchCost, shortName } from "../../src/bench/kernel_profile.ts";
import { decodeCost } from "../../src/bench/model_cost.ts";
import { fullShapes } from "../../src/bench/shapes.ts";

Deno.test("shortName wildcards layer numbers and shortens model prefixes", () => {
  assert.equal(shortName("language_model.model.layers.17.attention.wqkv.weight"), "lm.*.attention.wqkv");
  assert.equal(shortName("vision_model.encoder.layers.3.mlp.fc1.weight"), "vit.*.mlp.fc1");
  assert.equal(shortName("language_model.output.weight"), "lm.output");
  assert.equal(shortName("lm.L12.k_cache"), "lm.L*.k_cache");
});

Deno.test("dispatchCost counts a GEMV's weights once and 2·T·N·K FLOPs", async () => {
  const gpu = await Gpu.create();
  try {
    const x = gpu.createTensor("x", "f32", [1, 64]);
    const w = gpu.createTensor("w", "i8x4", [32, 64]);
    const s = gpu.createTensor("s", "f32", [32]);
    const out = gpu.createTensor("out", "f32", [1, 32]);
    const c = dispatchCost("linear_matvec", {
      bindings: [x, w, s, s, out],
      params: [32, 16, 4, 1, 0, 8],
      workgroups: [8],
      label: "linear_matvec language_model.model.layers.3.feed_forward.w1.weight",
    });
    assert.equal(c.op, "linear_matvec lm.*.feed_forward.w1");
    assert.equal(c.bytes, 64 * 4 + 32 * 64 + 32 * 4 + 32 * 4); // x + int8 W + scale + out (no bias)
    assert.equal(c.flops, 2 * 32 * 64);
    assert.equal(c.bytesModel, "model");
  } finally {
    gpu.destroy();
  }
});

Deno.test("decodeCost of the real shapes: 19.30 GB of weights and 393216 KV bytes per position", () => {
  const d = fullShapes.language;
  const c512 = decodeCost(d, 512), c4096 = decodeCost(d, 4096);
  assert.equal(c512.weightBytes, 19_302_612_516);
  assert.equal(c4096.kvBytes - c512.kvBytes, (4096 - 512) * 393_216);
  assert.equal(decodeCost(d, 512, 8).kvBytes, 8 * c512.kvBytes);
  assert.ok(Math.abs(c512.flops / 1e9 - 39.19) < 0.01);
});
