import assert from "node:assert/strict";
import { Gpu } from "../../src/gpu/device.ts";
import { randomF32 } from "../../src/ref/random.ts";

// A device of its own: Gpu keeps the first error (sticky by design), which would fail every later test
// on the shared one.
Deno.test("an invalid dispatch surfaces as an Error naming the kernel, from check() and readF32", async () => {
  const gpu = await Gpu.create();
  try {
    const x = gpu.uploadTensor("x", "f32", [2, 3], randomF32(6, 1));
    const out = gpu.createTensor("out", "f32", [2, 3]);
    const r = gpu.recorder("broken");
    // silu_mul takes gate, up, out: binding `x` as both an input and the output is a usage conflict.
    r.dispatch("silu_mul", {
      bindings: [x, x, x],
      params: [6, 1],
      workgroups: 1,
      label: "silu_mul mislabelled",
    });
    r.submit();
    await assert.rejects(gpu.check("the error test"), /while recording broken \(silu_mul mislabelled\)/);
    await assert.rejects(gpu.readF32(out), /silu_mul mislabelled.*noticed while reading back out/);
    // The error sticks: the engine reports it as its fault (/health 503) instead of trusting later results.
    assert.match(gpu.fault ?? "", /silu_mul mislabelled/);
  } finally {
    gpu.destroy();
  }
});
