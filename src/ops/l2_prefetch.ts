import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

/**
 * Records a read of all of `src` (kernels/l2_prefetch.wgsl) so its bytes are in L2 for a later kernel.
 * src: any tensor whose byte length is a multiple of 16; sink: [1] u32, a buffer no other dispatch of the
 * pass writes (so no barrier ties the prefetch to its neighbours). With `report` the sink receives the XOR
 * of every 32-bit word of src (tests).
 */
export function l2Prefetch(r: Recorder, src: Tensor, sink: Tensor, report = false): void {
  expectTensor("l2Prefetch sink", sink, "u32", [1]);
  if (src.byteLength % 16 !== 0) {
    throw new Error(`l2Prefetch: ${src.label} is ${src.byteLength} bytes, not a multiple of 16`);
  }
  const count = src.byteLength / 16;
  const groups = Math.max(1, Math.ceil(count / 1024));
  const groupsPerRow = Math.min(groups, 65535);
  r.dispatch("l2_prefetch", {
    bindings: [src, sink],
    params: [count, groupsPerRow, report ? 1 : 0],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    label: `l2_prefetch ${src.label}`,
  });
}
