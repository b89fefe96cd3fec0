import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * im2col for the patch-embedding Conv2d(3, D, p, stride p): pixels [N, 3, S, S] f32 →
 * out [N, (S/p)², 3·p·p] f32, columns in the order of the conv weight [D, 3, p, p] flattened, so
 * `linear(out, {kind: "f32", weight: convWeight viewed as [D, 3p²], bias: convBias})` is the conv.
 */
export function patchify(r: Recorder, pixels: Tensor, out: Tensor, patchSize: number): void {
  const [N, , S] = pixels.shape;
  expectTensor("patchify pixels", pixels, "f32", [N, 3, S, S]);
  if (!Number.isInteger(patchSize) || patchSize < 1 || S % patchSize !== 0) {
    throw new Error(`patchify: image side ${S} is not a multiple of the patch size ${patchSize}`);
  }
  const G = S / patchSize;
  expectTensor("patchify out", out, "f32", [N, G * G, 3 * patchSize * patchSize]);
  const n = N * G * G * 3 * patchSize * patchSize;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("patchify", {
    bindings: [pixels, out],
    params: [n, S, patchSize, G, groupsPerRow],
    workgroups,
    label: `patchify ${out.label}`,
  });
}
