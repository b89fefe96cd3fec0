import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * acc += scale ⊙ y in place, broadcasting scale over rows (InternViT layer scale), or acc += y.
 * acc, y: [T, D] f32 (distinct buffers); scale: [D] f32 or null.
 */
export function residualAdd(r: Recorder, acc: Tensor, y: Tensor, scale: Tensor | null): void {
  const [T, D] = acc.shape;
  expectTensor("residualAdd acc", acc, "f32", [T, D]);
  expectTensor("residualAdd y", y, "f32", [T, D]);
  if (scale) expectTensor("residualAdd scale", scale, "f32", [D]);
  if (y.buffer === acc.buffer) {
    throw new Error(`residualAdd: y (${y.label}) must not alias acc (${acc.label})`);
  }
  const n = T * D;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("residual_add", {
    bindings: [acc, y, scale ?? y],
    params: [n, D, scale ? 1 : 0, groupsPerRow],
    workgroups,
    label: `residual_add ${acc.label}`,
  });
}
