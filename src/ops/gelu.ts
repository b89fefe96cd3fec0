import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/** Exact erf GELU (InternViT mlp, mlp1.2). x, out: [T, N] f32, out a different buffer. */
export function gelu(r: Recorder, x: Tensor, out: Tensor): void {
  const [T, N] = x.shape;
  expectTensor("gelu x", x, "f32", [T, N]);
  expectTensor("gelu out", out, "f32", [T, N]);
  if (out.buffer === x.buffer) throw new Error(`gelu: out must not alias x (${x.label})`);
  const { workgroups, groupsPerRow } = flatGrid(T * N);
  r.dispatch("gelu", {
    bindings: [x, out],
    params: [T * N, groupsPerRow],
    workgroups,
    label: `gelu ${out.label}`,
  });
}
