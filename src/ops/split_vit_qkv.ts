import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * Splits InternViT's fused qkv output into q, k, v (columns [q | k | v], each head-major).
 * qkv: [T, 3D] f32 → q, k, v: [T, D] f32.
 */
export function splitVitQkv(r: Recorder, qkv: Tensor, q: Tensor, k: Tensor, v: Tensor): void {
  const [T, D] = q.shape;
  expectTensor("splitVitQkv q", q, "f32", [T, D]);
  expectTensor("splitVitQkv qkv", qkv, "f32", [T, 3 * D]);
  expectTensor("splitVitQkv k", k, "f32", [T, D]);
  expectTensor("splitVitQkv v", v, "f32", [T, D]);
  const { workgroups, groupsPerRow } = flatGrid(T * D);
  r.dispatch("split_vit_qkv", {
    bindings: [qkv, q, k, v],
    params: [T * D, D, groupsPerRow],
    workgroups,
    label: `split_vit_qkv ${qkv.label}`,
  });
}
