import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * out = x + scale ⊙ y, broadcasting scale over rows (InternViT layer scale), or out = x + y.
 * x, y, out: [T, D] f32; scale: [D] f32 or null. `out` may alias `x`.
 */
export function residualAdd(r: Recorder, x: Tensor, y: Tensor, scale: Tensor | null, out: Tensor): void {
  const [T, D] = x.shape;
  expectTensor("residualAdd x", x, "f32", [T, D]);
  expectTensor("residualAdd y", y, "f32", [T, D]);
  expectTensor("residualAdd out", out, "f32", [T, D]);
  if (scale) expectTensor("residualAdd scale", scale, "f32", [D]);
  const n = T * D;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("residual_add", {
    bindings: [x, y, scale ?? x, out],
    params: [n, D, scale ? 1 : 0, groupsPerRow],
    workgroups,
    label: `residual_add ${out.label}`,
  });
}
