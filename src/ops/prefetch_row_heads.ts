import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

// A weight-only decode step of one or two rows reads the first bytes of every row of each product's weights
// into L2 right after the product before it is recorded, so that the product's first loads come from L2.
// kernels/prefetch_row_heads.wgsl binds only the weights and a sink of its own, so no barrier orders it after
// that product and the GPU runs it in that product's tail, where the memory is no longer saturated. H100,
// PERF.md v52: 256 bytes a row with 132 workgroups took the step's GPU time from 9.24–9.26 to 9.03–9.07
// ms (generate(): 103.8 → 106.0 tokens/s); in the LLM.int8 decode and at 8 rows it did not help. v53 sized
// the read per product (below). Its 240 dispatches cost the CPU a few ms a step of recording, under the GPU's
// 9 ms; the two forms with fewer were slower (v53): the heads read by extra workgroups of the product before
// (9.42 ms a step: the next product then waits for them, where a dispatch of its own is waited for by nothing
// until the next barrier) and w1's and w3's heads in one dispatch (9.11 ms).

/** The products whose row heads are read ahead: a layer's in order (gate·up: w1, w3), then the LM head. */
export const rowHeadProducts = ["wqkv", "wo", "gateUp", "w2", "head"] as const;
export type RowHeadProduct = typeof rowHeadProducts[number];

/** How much of each row to read ahead and with how many workgroups; bytesPerRow 0: off. */
export interface RowHeadRead {
  bytesPerRow: number;
  workgroups: number;
}

export type RowHeadPrefetch = Record<RowHeadProduct, RowHeadRead>;

const off: RowHeadRead = { bytesPerRow: 0, workgroups: 0 };

/**
 * Per product (H100, PERF.md v53): each product's read left out in turn cost 0.18 ms a step for w2, 0.05–0.06
 * for wqkv and gate·up and 0.03 for wo, while the LM head's read cost 0.02 ms; fewer bytes for gate·up and w2
 * (whose reads run in the tails of wo and gate·up) and more for wo (whose read runs beside the attention)
 * took the step's GPU time from 9.03–9.04 to 8.95–8.97 ms; 64 bytes for gate·up lost 0.13 ms. Then 66
 * workgroups instead of 132 for the reads of wqkv, wo and gate·up: 8.96–8.97 → 8.92 ms (264: slower). Up to
 * 2 rows they help too (language.ts, maxRowHeadRows). gate·up's read, beside wo, then one 128-byte cache line a
 * row (H200, PERF.md v72, alternating four times: 7.606–7.616 → 7.525–7.545 ms a step at ctx 512, 8.285–8.294
 * → 8.234–8.238 at 4096): since v71's two rows a lane wo ends sooner, and 192 bytes (two lines) held gate·up
 * back; 112 or 144 bytes, or other workgroup counts, lost (7.59–7.75 ms). With v94's cheaper one-token
 * products the two lines won (H200, alternating three times: 7.091–7.093 → 7.073–7.076 ms a step at ctx
 * 512, weight-only batch 2 218.7–219.0 → 220.2–220.5 tokens/s; 256 bytes or 132 workgroups lost, and other
 * sizes for wqkv, wo, w2 and the LM head gained nothing: PERF.md v94).
 */
export const defaultRowHeadPrefetch: Readonly<RowHeadPrefetch> = Object.freeze({
  wqkv: { bytesPerRow: 256, workgroups: 66 },
  wo: { bytesPerRow: 512, workgroups: 66 },
  gateUp: { bytesPerRow: 192, workgroups: 66 },
  w2: { bytesPerRow: 192, workgroups: 132 },
  head: off,
});

/** The setting weight-only steps of 1–2 rows use (benchmarks may change it before building a model). */
export const rowHeadPrefetch: RowHeadPrefetch = copyRowHeadPrefetch(defaultRowHeadPrefetch);

export function copyRowHeadPrefetch(s: Readonly<RowHeadPrefetch>): RowHeadPrefetch {
  return Object.fromEntries(rowHeadProducts.map((p) => [p, { ...s[p] }])) as RowHeadPrefetch;
}

/** Whether any product's heads are read. */
export function rowHeadsOn(s: Readonly<RowHeadPrefetch>): boolean {
  return rowHeadProducts.some((p) => s[p].bytesPerRow > 0);
}

/**
 * Parses the bench's --row-head-prefetch: comma-separated `[PRODUCT=]BYTES:WORKGROUPS` or `[PRODUCT=]off`,
 * applied in order to the defaults; without a product an item sets every product (`off`: none read).
 */
export function parseRowHeadPrefetch(s: string): RowHeadPrefetch {
  const out = copyRowHeadPrefetch(defaultRowHeadPrefetch);
  const fail = (why: string): never => {
    throw new Error(
      `row head prefetch "${s}": ${why}; items [PRODUCT=]BYTES:WORKGROUPS (BYTES a multiple of 16) or ` +
        `[PRODUCT=]off, PRODUCT one of ${rowHeadProducts.join(", ")}`,
    );
  };
  for (const item of s.split(",")) {
    const [name, value] = item.includes("=") ? item.split("=", 2) : [null, item];
    if (name !== null && !(rowHeadProducts as readonly string[]).includes(name)) fail(`no product "${name}"`);
    let read = off;
    if (value !== "off") {
      const m = /^(\d+):(\d+)$/.exec(value);
      const [bytesPerRow, workgroups] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
      if (!(bytesPerRow >= 16 && bytesPerRow % 16 === 0 && workgroups >= 1 && workgroups <= 65535)) {
        fail(`"${item}"`);
      }
      read = { bytesPerRow, workgroups };
    }
    for (const p of name === null ? rowHeadProducts : [name as RowHeadProduct]) out[p] = { ...read };
  }
  return out;
}

/** `BYTES:WORKGROUPS` or off for each product, in order (logs and the bench's JSON). */
export function describeRowHeadPrefetch(s: Readonly<RowHeadPrefetch>): string {
  return rowHeadProducts.map((p) =>
    `${p}=${s[p].bytesPerRow ? `${s[p].bytesPerRow}:${s[p].workgroups}` : "off"}`
  ).join(",");
}

/**
 * Reads the first `bytesPerRow` bytes (whole 16-byte chunks, at most the row) of every row of `w` ([N, K]
 * i8x4, K % 16 == 0) into L2. `sink` ([≥1] u32) must be bound by no other dispatch of the pass.
 */
export function prefetchRowHeads(
  r: Recorder,
  w: Tensor,
  sink: Tensor,
  setting: RowHeadRead,
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
