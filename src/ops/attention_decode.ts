import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { expectKvCaches, kvKernel } from "./kv_cache_storage.ts";
import {
  expectRowGroups,
  llmInt8PackBlockColumns,
  type LlmInt8RowsScratch,
  maxLlmInt8Rows,
  type PairedRowsScratch,
  type ScannedRowGroups,
  type ScannedRows,
} from "./matvec_dp4a.ts";

export interface AttentionDecodeShape {
  batch: number; // B sequences, one new query each (T = 1)
  /** Cache positions 0 … kvLen−1 are attended (those with keyValid 1); the new token's is kvLen−1. */
  kvLen: number;
  numHeads: number; // H query heads
  numKvHeads: number; // Hkv (H % Hkv == 0, G = H/Hkv ≤ 8)
  headDim: number; // Dh (multiple of 4, ≤ 128)
  /** Split partials from `createAttentionDecodeScratch`; without it the keys are not split. */
  scratch?: Tensor;
  /** Force the number of key splits (tests, benchmarks); by default chosen to fill the GPU. */
  splits?: number;
  /**
   * The `batch` queries are consecutive new tokens of ONE cached sequence (cache sample 0): query b sees
   * kvLen + b keys (causal). A short follow-up chunk then runs as a decode step of `batch` rows.
   */
  oneSequence?: boolean;
  /**
   * INT8_MATMUL=llm-int8: the combine pass also does the LLM.int8 rows scan of `out` (one block a head, into
   * the rows scratch's colbits, partial and count), when it runs (more than one split), B ≤ 8 (or the rows
   * are `scan.groups`) and Dh/4 divides the pack's 32-column blocks. The call then returns the scanned rows
   * for llmInt8Pack (llmInt8PackGroups), else null.
   */
  scan?: AttentionRowsScan;
}

/** Where and at which threshold the combine pass leaves the LLM.int8 rows scan of the attention output. */
export interface AttentionRowsScan {
  scratch: LlmInt8RowsScratch; // width H·Dh, rows ≥ B
  threshold: number;
  /**
   * A step in 2 or 3 row groups quantized apart (`llmInt8RowsGroups`' rows, summing to B): each group's scan
   * into its part of `joint` instead of `scratch`.
   */
  groups?: { rows: number[]; joint: PairedRowsScratch };
}

/** Tiling of kernels/attention_decode.wgsl (its override constants WG and PREFETCH). */
export interface AttentionDecodeConfig {
  /** Threads per workgroup, 256 or 128; a tile is a quarter as many keys (64 or 32). */
  workgroupSize: 256 | 128;
  /** Issue the next tile's K loads before this tile's softmax and P·V (only splits of > 1 tile differ). */
  prefetch: boolean;
}

/** Every tiling scripts/bench_attention_decode.ts times. */
export const attentionDecodeConfigs: readonly AttentionDecodeConfig[] = [
  { workgroupSize: 256, prefetch: true },
  { workgroupSize: 256, prefetch: false },
  { workgroupSize: 128, prefetch: true },
];

/**
 * scripts/bench_attention_decode.ts on an H100 (2026-11-26, bench/results/2026-11-26-h100-attention-decode.log,
 * attention + combine per layer): 128 threads 14.2 / 28.4 / 27.7 µs at B=1 ctx 512 / B=1 ctx 4096 / B=8
 * ctx 512, 256 threads 14.6 / 35.3 / 34.3, the old kernel 16.6 / 77.4 / 75.4.
 */
export const defaultAttentionDecodeConfig: AttentionDecodeConfig = { workgroupSize: 128, prefetch: true };

/**
 * Workgroups worth launching for one row or one sequence's chunk: 2 per SM of an H100/H200 (132 SMs), as
 * many as fit at once with the workgroup memory `spreadSmVec4` gives them, so a split is one wave and never
 * waits for a second one.
 */
const targetWorkgroups = 264;
/**
 * For 2 or more rows of their own caches (a batch's decode step): 3 per SM, with the kernel's workgroup
 * memory at what its tiling needs (9.3 KiB at WG 128, Dh 128, G 6) so that they fit at once. On an H100
 * (PERF.md v54, alternating twice, tokens/s at 2…8 rows): llm-int8 batch 8 540.1–540.4 → 543.0–543.5, 7
 * 481.9–482.5 → 487.0–487.1, 4 324.4–324.6 → 326.8–327.0; weight-only batch 8 393.7–393.8 → 395.3–395.7, 7
 * 374.7–375.4 → 378.1–378.4; 3 and 6 rows weight-only −0.4–0.5 %. 528 lost at 3 and 6 rows (1–2 %). With
 * the 20.1 KiB footprint more splits lost (batch 8 at 528: 528.5–528.9 against 541.2–541.3); the compact
 * footprint at 264 lost a little (539.1–540.1).
 */
const batchTargetWorkgroups = 396;
/**
 * sm's length (vec4) for one row and a chunk's rows: the kernel's former fixed 18 KiB (20.1 KiB in all, two
 * workgroups a multiprocessor). The footprint the tiling needs was slower there: 8.906–8.908 → 8.915–8.922 ms
 * a step at ctx 512, 9.654–9.659 → 9.686–9.688 at ctx 4096 (v54); twice the workgroups lost more (9.97).
 */
const spreadSmVec4 = 1152;

/** A batch's rows, each reading its own cache (not one sequence's chunk, not a single row). */
function ownCacheRows(batch: number, oneSequence: boolean): boolean {
  return batch >= 2 && !oneSequence;
}
/**
 * Fewest keys per split, and the step splits are rounded to. Fewer keys than a tile leave threads idle
 * but shorten the longest split, which sets the latency at short contexts; the combine pass reads
 * 4·(Dh+4)·G bytes per split and head group against the 8·Dh·chunk bytes of K/V the split itself reads
 * (≈ 10% extra traffic at 32 keys, less beyond).
 */
const minKeysPerSplit = 32;
/** Default scratch capacity: 128 splits of 32 keys cover 4096 positions at any batch. */
const defaultMaxSplits = 128;

/** Split partials for `attentionDecode`: [maxSplits, B·H, Dh+4] f32 (o, then m, l and two pad words). */
export function createAttentionDecodeScratch(
  gpu: Gpu,
  label: string,
  shape: { batch: number; numHeads: number; headDim: number; maxSplits?: number },
): Tensor {
  const rows = shape.batch * shape.numHeads;
  return gpu.createTensor(label, "f32", [shape.maxSplits ?? defaultMaxSplits, rows, shape.headDim + 4]);
}

/**
 * Most splits `decodeSplits` picks for `batch` rows (`oneSequence`: rows of one sequence's chunk): a scratch
 * this deep never limits it. Rows of their own caches (a batch's decode step) round down: each row streams
 * its own keys, and fewer, longer splits carried that traffic better — batch 8 took 5 splits a few keys past
 * 512 rounded up, 4 rounded down (H100, PERF.md v49: batch 8 528.6 → 541.1 tokens/s with llm-int8, 385.6 →
 * 393.1 weight-only; batch 1 unchanged; with v54's target for them, batch 8 a few keys past 512 takes 6
 * splits of 96 keys). A chunk's rows read one cache, mostly from L2, so each split's chain of tiles is what
 * takes the time: they round up (rounded down, the follow-up round's first token came 20–80 ms later, v49).
 */
export function decodeScratchSplits(batch: number, numKvHeads: number, oneSequence = false): number {
  const target = ownCacheRows(batch, oneSequence) ? batchTargetWorkgroups : targetWorkgroups;
  const perRow = target / (batch * numKvHeads);
  return oneSequence ? Math.ceil(perRow) : Math.max(1, Math.floor(perRow));
}

/** The split count and keys per split `attentionDecode` uses for a context of kvLen keys. */
export function decodeSplits(
  kvLen: number,
  batch: number,
  numKvHeads: number,
  capacity: number,
  oneSequence = false,
): { splits: number; chunk: number } {
  const wanted = decodeScratchSplits(batch, numKvHeads, oneSequence);
  const step = minKeysPerSplit;
  let chunk = Math.max(step, Math.ceil(kvLen / wanted / step) * step);
  // A scratch too small for that many splits: the fewest longer splits it holds.
  if (Math.ceil(kvLen / chunk) > capacity) chunk = Math.ceil(kvLen / capacity / step) * step;
  return { splits: Math.ceil(kvLen / chunk), chunk };
}

/**
 * Decode-step GQA attention (T = 1, REFERENCE §7), flash-decoding: the keys of every (sample, kv head)
 * are cut into splits, one workgroup each, that read each K/V row once for all G query heads; a second
 * pass merges the splits (log-sum-exp).
 * q, out: [B, H·Dh] f32; kCache, vCache: [B, S, Hkv·Dh] f32 or bf16x2 (already holding the new key/value at
 * kvLen−1);
 * keyValid: [B, S] i32, 1 = real token, 0 = left padding. A head that sees no valid key gives zeros.
 */
export function attentionDecode(
  r: Recorder,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionDecodeShape,
  config: AttentionDecodeConfig = defaultAttentionDecodeConfig,
): ScannedRows | ScannedRowGroups | null {
  return recordAttentionDecode(r, q, null, kCache, vCache, keyValid, out, shape, config);
}

/** The rotary inputs of `attentionDecodeFromQkv`. */
export interface DecodeRope {
  /** [B] i32: the rotary position of each sample's new token. */
  positions: Tensor;
  /** [P, Dh] f32: per position the cos then the sin half (ropeCosSinRows of src/ops/rope.ts). */
  cosSin: Tensor;
}

/**
 * `qkvRopeCache` then `attentionDecode` for a decode step (T = 1) in one attention dispatch (plus the
 * combine): qkv [B, Hkv·(G+2)·Dh] is the fused wqkv output; the queries are rotated in the kernel, the
 * rotated key and the value of each sample's new token are written to the caches at kvLen−1 for later steps,
 * and this step takes them straight from qkv. Dh % 8 == 0; not for oneSequence chunks.
 */
export function attentionDecodeFromQkv(
  r: Recorder,
  qkv: Tensor,
  rope: DecodeRope,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionDecodeShape,
  config: AttentionDecodeConfig = defaultAttentionDecodeConfig,
): ScannedRows | ScannedRowGroups | null {
  if (shape.oneSequence) {
    throw new Error("attentionDecodeFromQkv: decode steps only (not oneSequence chunks)");
  }
  if (shape.headDim % 8 !== 0) {
    throw new Error(`attentionDecodeFromQkv: head dim ${shape.headDim} must be a multiple of 8`);
  }
  return recordAttentionDecode(r, qkv, rope, kCache, vCache, keyValid, out, shape, config);
}

function recordAttentionDecode(
  r: Recorder,
  q: Tensor,
  rope: DecodeRope | null,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionDecodeShape,
  config: AttentionDecodeConfig,
): ScannedRows | ScannedRowGroups | null {
  const { batch: B, kvLen, numHeads: H, numKvHeads: Hkv, headDim: Dh } = shape;
  if (Dh % 4 !== 0 || Dh > 128 || Dh < 4) {
    throw new Error(`attentionDecode: head dim ${Dh} is not supported; it must be a multiple of 4 up to 128`);
  }
  if (!(H > 0 && Hkv > 0 && H % Hkv === 0 && H / Hkv <= 8)) {
    throw new Error(`attentionDecode: ${H} query heads do not split into ${Hkv} kv groups of at most 8`);
  }
  const S = kCache.shape[1];
  const one = shape.oneSequence === true;
  const Bc = one ? kCache.shape[0] : B; // cache samples (one sequence: any, sample 0 is read)
  if (rope) {
    expectTensor("attentionDecodeFromQkv qkv", q, "f32", [B, (H + 2 * Hkv) * Dh]);
    expectTensor("attentionDecodeFromQkv positions", rope.positions, "i32", [B]);
    expectTensor("attentionDecodeFromQkv cosSin", rope.cosSin, "f32", [-1, Dh]);
  } else {
    expectTensor("attentionDecode q", q, "f32", [B, H * Dh]);
  }
  expectKvCaches("attentionDecode", kCache, vCache, [Bc, S, Hkv * Dh]);
  expectTensor("attentionDecode keyValid", keyValid, "i32", [Bc, S]);
  expectTensor("attentionDecode out", out, "f32", [B, H * Dh]);
  const maxLen = one ? kvLen + B - 1 : kvLen; // the longest row's keys
  if (!Number.isInteger(kvLen) || kvLen < 1 || maxLen > S) {
    throw new Error(
      `attentionDecode: kvLen ${kvLen}${
        one ? ` + ${B - 1} tokens` : ""
      } must be 1…${S} (the cache holds ${S} ` +
        `positions)`,
    );
  }
  const rows = B * H;
  const { scratch } = shape;
  if (scratch) expectTensor("attentionDecode scratch", scratch, "f32", [-1, rows, Dh + 4]);
  const capacity = scratch ? scratch.shape[0] : 1;
  if (shape.splits !== undefined && !(Number.isInteger(shape.splits) && shape.splits >= 1)) {
    throw new Error(`attentionDecode: splits ${shape.splits} must be a positive integer`);
  }
  if (shape.splits !== undefined && shape.splits > capacity) {
    throw new Error(
      `attentionDecode: ${shape.splits} splits need a scratch of ${shape.splits}×${rows}×${Dh + 4}`,
    );
  }
  let splits: number, chunk: number;
  if (shape.splits !== undefined) {
    chunk = Math.ceil(maxLen / shape.splits);
    splits = Math.ceil(maxLen / chunk);
  } else {
    ({ splits, chunk } = decodeSplits(maxLen, B, Hkv, capacity, one));
  }
  r.dispatch(kvKernel("attention_decode", kCache), {
    // Without rope its two bindings still need read-only buffers (never read): keyValid stands in.
    bindings: [
      q,
      kCache,
      vCache,
      keyValid,
      out,
      splits > 1 ? scratch! : out,
      rope?.cosSin ?? keyValid,
      rope?.positions ?? keyValid,
    ],
    params: [
      B,
      S,
      kvLen,
      H,
      Hkv,
      chunk,
      splits,
      f32(1 / Math.sqrt(Dh)),
      one ? 1 : 0,
      rope ? rope.cosSin.shape[0] : 1,
    ],
    workgroups: [splits, Hkv, B],
    constants: {
      D4: Dh / 4,
      G: H / Hkv,
      WG: config.workgroupSize,
      PREFETCH: config.prefetch ? 1 : 0,
      FUSED: rope ? 1 : 0,
      SM_MIN: ownCacheRows(B, one) ? 0 : spreadSmVec4,
    },
    label: `attention_decode ${out.label}`,
  });
  if (splits === 1) return null;
  const D4 = Dh / 4;
  const sc = shape.scan;
  const groupRows = sc?.groups?.rows ?? [B];
  const scan = sc && groupRows.every((n) => n <= maxLlmInt8Rows) &&
      llmInt8PackBlockColumns % D4 === 0 && (D4 & (D4 - 1)) === 0
    ? sc
    : null;
  if (scan) checkRowsScan(scan, B, H, Dh);
  // Group g's scan arrays: the joint scratch's (group g's part from g·K/4), else the rows scratch's.
  const arrays = scan?.groups ? scan.groups.joint.groups[0] : scan?.scratch;
  const rowsPerGroup = scan ? 2 ** Math.ceil(Math.log2(groupRows[0])) : 1;
  r.dispatch("attention_decode_combine", {
    bindings: [scratch!, out, arrays?.colbits ?? out, arrays?.partial ?? out, arrays?.count ?? out],
    params: [
      rows,
      splits,
      H,
      groupRows[0],
      f32(scan?.threshold ?? 0),
      groupRows[1] ?? 0,
      groupRows[2] ?? 0,
      groupRows[0],
    ],
    workgroups: scan ? [H, groupRows.length] : [rows],
    constants: { D4, RP: rowsPerGroup, SCAN: scan ? 1 : 0 },
    label: `attention_decode_combine ${out.label}`,
  });
  if (!scan) return null;
  // One block of partial maxima and counts a head, 32/D4 of them to one of the pack's blocks.
  const blocks = { blocks: H, perPackBlock: llmInt8PackBlockColumns / D4 };
  return scan.groups
    ? { rows: scan.groups.rows, joint: scan.groups.joint, values: out, ...blocks }
    : { rows: B, K: H * Dh, scratch: scan.scratch, values: out, ...blocks };
}

/** What a combine pass that scans needs of its scratch and its rows. */
function checkRowsScan(scan: AttentionRowsScan, B: number, H: number, Dh: number): void {
  const s = scan.scratch;
  if (s.outliers.shape[0] !== H * Dh + 1 || (!scan.groups && s.q.shape[0] < B)) {
    throw new Error(
      `attentionDecode: the rows scan's scratch does not hold ${B} rows of ${H} heads of ${Dh}`,
    );
  }
  if (!(scan.threshold > 0)) throw new Error(`attentionDecode: threshold ${scan.threshold} must be > 0`);
  const g = scan.groups;
  if (g) {
    expectRowGroups(`attentionDecode: row groups ${g.rows}`, g.rows, g.joint);
    if (g.rows.reduce((a, n) => a + n, 0) !== B || g.joint.K !== H * Dh) {
      throw new Error(
        `attentionDecode: row groups ${g.rows} of width ${g.joint.K} for ${B} rows of ${H * Dh}`,
      );
    }
  }
}
