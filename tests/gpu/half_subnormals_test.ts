import assert from "node:assert/strict";
import { probeHalfSubnormals } from "../../src/gpu/half_subnormals.ts";
import type { Recorder } from "../../src/gpu/recorder.ts";
import { linearMatvecForm } from "../../src/ops/linear.ts";
import { testGpu } from "../kernels/check.ts";

// The biased one-token sums rest on unpack2x16float keeping subnormal halves. Mesa's llvmpipe (the tests'
// adapter in CI) and NVIDIA's Vulkan driver (the GPU host) were found to keep them: the probe must say so
// there, and `Gpu.create` must have recorded what the probe says.
Deno.test("half subnormal probe: what Gpu.create recorded, and kept on llvmpipe and NVIDIA", async () => {
  const gpu = await testGpu();
  const probed = await probeHalfSubnormals(gpu);
  assert.equal(gpu.halfSubnormals, probed);
  if (/llvmpipe|nvidia/i.test(gpu.adapterDescription)) assert.equal(probed, true, gpu.adapterDescription);
});

Deno.test("linearMatvecForm: biased sums at one token only where the device keeps subnormal halves", () => {
  // The GPU's choice, whatever adapter runs the tests (llvmpipe takes a plain form of its own).
  for (const halfSubnormals of [true, false]) {
    const gpuRecorder = { fallbackAdapter: false, halfSubnormals } as Recorder;
    assert.equal(linearMatvecForm(gpuRecorder, 1, true).biased, halfSubnormals);
    assert.ok(!linearMatvecForm(gpuRecorder, 2, true).biased);
  }
});
