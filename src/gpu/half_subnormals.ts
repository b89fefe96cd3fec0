import type { Gpu } from "./device.ts";
import type { Recorder } from "./recorder.ts";

/**
 * Half floats whose exponent bits are 0: mantissa·2⁻²⁴, every int8 weight the biased widening makes
 * ((b + 128)·2⁻²⁴, i8x4_biased in kernels/int8.wgsl) and the extremes of the range.
 */
const mantissas = [1, 2, 0x3f, 0x7f, 0x80, 0xff, 0x155, 0x3ff];

/** Refuses biased sums asked for by hand on a device that flushes subnormal halves (they would be wrong). */
export function expectHalfSubnormals(r: Recorder, what: string): void {
  if (!r.halfSubnormals) {
    throw new Error(`${what}: biased sums need subnormal half floats, which this device flushes to zero`);
  }
}

/**
 * Whether the device's unpack2x16float keeps subnormal half floats (kernels/half_subnormal_probe.wgsl). Where
 * it flushes them to zero, the matrix-vector kernels' biased sums would be wrong, so they take the exact
 * widening instead (matvecConfig, linearMatvecForm). Mesa's llvmpipe and NVIDIA's Vulkan driver keep them.
 */
export async function probeHalfSubnormals(gpu: Gpu): Promise<boolean> {
  const pairs = mantissas.length / 2;
  const words = new Uint32Array(pairs);
  for (let i = 0; i < pairs; i++) words[i] = mantissas[2 * i] | (mantissas[2 * i + 1] << 16);
  const input = gpu.uploadTensor("half subnormal probe words", "u32", [pairs], words);
  const out = gpu.createTensor("half subnormal probe out", "f32", [2 * pairs]);
  try {
    const r = gpu.recorder("half subnormal probe");
    r.dispatch("half_subnormal_probe", {
      bindings: [input, out],
      params: [pairs],
      workgroups: [Math.ceil(pairs / 64)],
      label: "half_subnormal_probe",
    });
    r.submit();
    const got = await gpu.readF32(out);
    return mantissas.every((m, i) => got[i] === m * 2 ** -24);
  } finally {
    input.buffer.destroy();
    out.buffer.destroy();
  }
}
