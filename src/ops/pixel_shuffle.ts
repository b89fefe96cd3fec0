import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * Drops the CLS token and applies InternVL's pixel shuffle v2 (REFERENCE §6):
 * x: [N, 1 + P·P, C] f32 (ViT last hidden state) → out: [N, (P/2)², 4C] f32.
 */
export function pixelShuffle(r: Recorder, x: Tensor, out: Tensor, shape: { gridSide: number }): void {
  const P = shape.gridSide;
  if (!Number.isInteger(P) || P < 2 || P % 2 !== 0) {
    throw new Error(`pixelShuffle: grid side ${P} must be a positive even number`);
  }
  const [N, , C] = x.shape;
  expectTensor("pixelShuffle x", x, "f32", [N, 1 + P * P, C]);
  expectTensor("pixelShuffle out", out, "f32", [N, (P / 2) ** 2, 4 * C]);
  const n = N * (P / 2) ** 2 * 4 * C;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("pixel_shuffle", {
    bindings: [x, out],
    params: [n, C, P, groupsPerRow],
    workgroups,
    label: `pixel_shuffle ${out.label}`,
  });
}
