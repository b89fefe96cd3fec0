import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * out[n] = concat(classEmbedding, patchEmbeds[n]) + positionEmbedding (InternVisionEmbeddings).
 * patchEmbeds: [N, P, D] f32; classEmbedding: [D]; positionEmbedding: [P + 1, D] (resized to the grid by
 * the caller; identity at 448 px); out: [N, P + 1, D] f32.
 */
export function vitEmbeddings(
  r: Recorder,
  patchEmbeds: Tensor,
  classEmbedding: Tensor,
  positionEmbedding: Tensor,
  out: Tensor,
): void {
  const [N, P, D] = patchEmbeds.shape;
  expectTensor("vitEmbeddings patchEmbeds", patchEmbeds, "f32", [N, P, D]);
  expectTensor("vitEmbeddings classEmbedding", classEmbedding, "f32", [D]);
  expectTensor("vitEmbeddings positionEmbedding", positionEmbedding, "f32", [P + 1, D]);
  expectTensor("vitEmbeddings out", out, "f32", [N, P + 1, D]);
  const n = N * (P + 1) * D;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("vit_embeddings", {
    bindings: [patchEmbeds, classEmbedding, positionEmbedding, out],
    params: [n, P, D, groupsPerRow],
    workgroups,
    label: `vit_embeddings ${out.label}`,
  });
}
