import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/** out = silu(gate) · up (InternLM2 w2 input). gate, up, out: [T, N] f32, out a third buffer. */
export function siluMul(r: Recorder, gate: Tensor, up: Tensor, out: Tensor): void {
  const [T, N] = gate.shape;
  expectTensor("siluMul gate", gate, "f32", [T, N]);
  expectTensor("siluMul up", up, "f32", [T, N]);
  expectTensor("siluMul out", out, "f32", [T, N]);
  if (out.buffer === gate.buffer || out.buffer === up.buffer) {
    throw new Error(`siluMul: out (${out.label}) must not alias gate or up`);
  }
  const { workgroups, groupsPerRow } = flatGrid(T * N);
  r.dispatch("silu_mul", {
    bindings: [gate, up, out],
    params: [T * N, groupsPerRow],
    workgroups,
    label: `silu_mul ${out.label}`,
  });
}
