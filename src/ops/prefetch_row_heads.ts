import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

// A one-row weight-only decode step reads the first bytes of every row of each product's weights into L2 right
// after the product before it is recorded, so that the product's first loads come from L2.
// kernels/prefetch_row_heads.wgsl binds only the weights and a sink of its own, so no barrier orders it after
// that product and the GPU runs it in that product's tail, where the memory is no longer saturated. H100,
// PERF.md v52: 256 bytes a row with 132 workgroups took the step's GPU time from 9.24–9.26 to 9.03–9.07 ms
// (generate(): 103.8 → 106.0 tokens/s); 128 or 512 bytes and 264 or 528 workgroups gained less; in the
// LLM.int8 decode and at 8 rows it did not help. Its 241 dispatches cost the CPU a few ms a step of
// recording, under the GPU's 9 ms.

/** How much of each row to read ahead and with how many workgroups; bytesPerRow 0: off. */
export interface RowHeadPrefetch {
  bytesPerRow: number;
  workgroups: number;
}

/** The setting one-row weight-only decode steps use (benchmarks may change it before building a model). */
export const rowHeadPrefetch: RowHeadPrefetch = { bytesPerRow: 256, workgroups: 132 };

/** Parses `BYTES:WORKGROUPS` or `off` (the bench's --row-head-prefetch). */
export function parseRowHeadPrefetch(s: string): RowHeadPrefetch {
  if (s === "off") return { bytesPerRow: 0, workgroups: 0 };
  const m = /^(\d+):(\d+)$/.exec(s);
  const [bytesPerRow, workgroups] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(bytesPerRow >= 16 && bytesPerRow % 16 === 0 && workgroups >= 1 && workgroups <= 65535)) {
    throw new Error(`row head prefetch "${s}": BYTES:WORKGROUPS (BYTES a multiple of 16) or off`);
  }
  return { bytesPerRow, workgroups };
}

/**
 * Reads the first `bytesPerRow` bytes (whole 16-byte chunks, at most the row) of every row of `w` ([N, K]
 * i8x4, K % 16 == 0) into L2. `sink` ([≥1] u32) must be bound by no other dispatch of the pass.
 */
export function prefetchRowHeads(
  r: Recorder,
  w: Tensor,
  sink: Tensor,
  setting: RowHeadPrefetch,
  /** The value whose XOR match stores to the sink (tests: one thread's XOR, to see what it read). */
  magic = 0x9e3779b9,
): void {
  const [N, K] = w.shape;
  expectTensor(`prefetch_row_heads ${w.label}`, w, "i8x4", [N, K]);
  if (K % 16 !== 0) throw new Error(`prefetch_row_heads ${w.label}: K = ${K} is not a multiple of 16`);
  if (!(sink.dtype === "u32" && sink.numel >= 1)) {
    throw new Error(`prefetch_row_heads: sink ${sink.describe()}`);
  }
  const row16 = K / 16;
  const c16 = Math.min(row16, Math.max(1, Math.floor(setting.bytesPerRow / 16)));
  const total = N * c16;
  r.dispatch("prefetch_row_heads", {
    bindings: [w, sink],
    params: [N, row16, c16, total, magic],
    workgroups: Math.max(1, Math.min(setting.workgroups, Math.ceil(total / 256))),
    label: `prefetch_row_heads ${w.label}`,
  });
}
