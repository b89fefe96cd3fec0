import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";

/**
 * Reads the first `bytes` of `src` (rounded down to 16-byte words) and discards them: an experiment that
 * warms L2 for the next kernel (kernels/l2_prefetch.wgsl). `sink` must be a buffer no other dispatch of the
 * pass writes, or the driver orders this dispatch behind the ones before it and nothing overlaps.
 */
export function l2Prefetch(r: Recorder, src: Tensor, bytes: number, sink: Tensor, workgroups = 264): void {
  const count = Math.floor(Math.min(bytes, src.byteLength) / 16);
  if (count < 1) return;
  r.dispatch("l2_prefetch", {
    bindings: [src, sink],
    params: [0, count],
    workgroups,
    label: `l2_prefetch ${src.label}`,
  });
}
