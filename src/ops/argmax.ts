import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/** Greedy choice per row: out[b] = argmax logits[b, :] (lowest index on ties). logits: [B, V] f32, out: [B] i32. */
export function argmax(r: Recorder, logits: Tensor, out: Tensor): void {
  const [B, V] = logits.shape;
  expectTensor("argmax logits", logits, "f32", [B, V]);
  expectTensor("argmax out", out, "i32", [B]);
  const { workgroups, groupsPerRow } = flatGrid(B, 1);
  r.dispatch("argmax", {
    bindings: [logits, out],
    params: [V, groupsPerRow, B],
    workgroups,
    label: `argmax ${logits.label}`,
  });
}
