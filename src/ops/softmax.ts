import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/** Row-wise max-subtracted softmax in f32. x, out: [R, C] f32 (distinct tensors). */
export function softmax(r: Recorder, x: Tensor, out: Tensor): void {
  const [R, C] = x.shape;
  expectTensor("softmax x", x, "f32", [R, C]);
  expectTensor("softmax out", out, "f32", [R, C]);
  if (x.buffer === out.buffer) throw new Error(`softmax: out must not alias x (${x.label})`);
  const { workgroups, groupsPerRow } = flatGrid(R, 1);
  r.dispatch("softmax", {
    bindings: [x, out],
    params: [C, R, groupsPerRow],
    workgroups,
    label: `softmax ${out.label}`,
  });
}
