import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";
import { type NormThreads, normThreads } from "./norm_threads.ts";

/**
 * out = x · rsqrt(mean(x²) + eps) · weight per row (InternRMSNorm / InternLM2RMSNorm, fp32).
 * x, out: [T, D] f32; weight: [D] f32.
 */
export function rmsNorm(
  r: Recorder,
  x: Tensor,
  weight: Tensor,
  out: Tensor,
  eps: number,
  threads: NormThreads = normThreads(r),
): void {
  const [T, D] = x.shape;
  expectTensor("rmsNorm x", x, "f32", [T, D]);
  expectTensor("rmsNorm weight", weight, "f32", [D]);
  expectTensor("rmsNorm out", out, "f32", [T, D]);
  if (out.buffer === x.buffer) throw new Error(`rmsNorm: out must not alias x (${x.label})`);
  const { workgroups, groupsPerRow } = flatGrid(T, 1); // one workgroup per row
  r.dispatch("rms_norm", {
    bindings: [x, weight, out],
    params: [D, f32(eps), T, groupsPerRow],
    workgroups,
    constants: { WG: threads },
    label: `rms_norm ${weight.label}`,
  });
}
