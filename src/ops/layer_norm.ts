import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";
import { type NormThreads, normThreads } from "./norm_threads.ts";

/**
 * nn.LayerNorm over the last dim (mlp1.0, D = 12800): out = (x − mean) · rsqrt(var + eps) · weight + bias.
 * x, out: [T, D] f32; weight, bias: [D] f32.
 */
export function layerNorm(
  r: Recorder,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  out: Tensor,
  eps: number,
  threads: NormThreads = normThreads(r),
): void {
  const [T, D] = x.shape;
  expectTensor("layerNorm x", x, "f32", [T, D]);
  expectTensor("layerNorm weight", weight, "f32", [D]);
  expectTensor("layerNorm bias", bias, "f32", [D]);
  expectTensor("layerNorm out", out, "f32", [T, D]);
  if (out.buffer === x.buffer) throw new Error(`layerNorm: out must not alias x (${x.label})`);
  const { workgroups, groupsPerRow } = flatGrid(T, 1); // one workgroup per row
  r.dispatch("layer_norm", {
    bindings: [x, weight, bias, out],
    params: [D, f32(eps), T, groupsPerRow],
    workgroups,
    constants: { WG: threads },
    label: `layer_norm ${weight.label}`,
  });
}
