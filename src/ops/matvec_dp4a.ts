import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, frontView, reshape, rowsView, storageOffsetAlign, Tensor } from "../gpu/tensor.ts";
import type { LinearWeights } from "./linear.ts";
import { flatGrid } from "./grid.ts";
import { llmInt8Threshold } from "./llm_int8.ts";
import { dp4aOverride } from "./tiling_overrides.ts";

// bitsandbytes' LLM.int8 for a few rows (decode steps, short chunks; INT8_MATMUL=llm-int8):
//   v[t, k]    the row as the layer multiplies it (x, or RMSNorm(x)·g);
//   outlier k  some row has |v[t, k]| ≥ θ: its column leaves the int8 product and is multiplied in f32;
//   sca[t]     max |v[t, k]| over the values below θ; xs[t] = sca[t]/127;
//   q[t, k]    0 in an outlier column, else round_half_even(v[t, k] · 127/sca[t]);
//   out[t, n]  = s[n] · (xs[t] · Σ_k q[t, k]·W[n, k] + Σ_{k outlier} v[t, k]·W[n, k]).
// The activation side takes two dispatches over blocks of columns (kernels/llm_int8_rows_scan.wgsl,
// kernels/llm_int8_rows_pack.wgsl: no workgroup waits for another), the product one
// (kernels/matvec_dp4a.wgsl, int8 × int8 through dot4I8Packed; for the feed-forward it multiplies gate and up
// and writes silu(gate)·up, the w2 input).

/** Most rows one LLM.int8 row pass takes (one workgroup; the matrix kernel's tokens, two groups' in pairs). */
export const maxLlmInt8Rows = 8;
/** Widest K (the workgroup's outlier bitmap: 512 words). */
export const maxLlmInt8RowsK = 16384;

/** vec4 columns per block of the two row passes (256 threads = 8 rows × 32 columns). */
const blockColumns = 32;

/** Scratch of the rows' activation side for inputs of width K and up to `rows` rows. */
export interface LlmInt8RowsScratch {
  q: Tensor; // [rows, K/4] u32
  xs: Tensor; // [rows] f32: sca/127
  outliers: Tensor; // [1 + K] u32: count, then the columns ascending
  values: Tensor; // [rows, K] f32: the rows as multiplied, when that is not x (the norm folded in)
  colbits: Tensor; // [K/4] u32: outlier bits of each vec4 column
  partial: Tensor; // [blocks·8] f32: each block's row maxima below θ (blocks as fine as 1 vec4 column)
  count: Tensor; // [blocks] u32: each block's outlier columns
  /**
   * [8, K/8] f32: Σx² of the rows in parts, written by the matrix kernel that produced x (`squares` of
   * matvecLlmInt8) for the RMSNorm of the next rows pass; K/8 holds one part per workgroup of any tiling.
   */
  squares: Tensor;
}

export function createLlmInt8RowsScratch(
  gpu: Gpu,
  label: string,
  rows: number,
  K: number,
): LlmInt8RowsScratch {
  if (!(rows >= 1 && rows <= maxLlmInt8Rows && K % 4 === 0 && K >= 4 && K <= maxLlmInt8RowsK)) {
    throw new Error(
      `LLM.int8 rows: ${rows} rows × K=${K} (rows 1..${maxLlmInt8Rows}, K a multiple of 4 ≤ 16384)`,
    );
  }
  return {
    q: gpu.createTensor(`${label}.q`, "u32", [rows, K / 4]),
    xs: gpu.createTensor(`${label}.xs`, "f32", [rows]),
    outliers: gpu.createTensor(`${label}.outliers`, "u32", [1 + K]),
    values: gpu.createTensor(`${label}.values`, "f32", [rows, K]),
    ...createScanArrays(gpu, label, K),
  };
}

/**
 * The scan's block arrays and the Σx² parts of rows of width K: what rows quantized one pass at a time share;
 * with `groups` > 1, the block arrays of that many groups scanned in one pass, each after the one before.
 */
function createScanArrays(gpu: Gpu, label: string, K: number, groups = 1) {
  // A scan by the attention's combine leaves a block per head: as narrow as one vec4 column.
  const blocks = K / 4;
  return {
    colbits: gpu.createTensor(`${label}.colbits`, "u32", [groups * K / 4]),
    partial: gpu.createTensor(`${label}.partial`, "f32", [groups * blocks * 8]),
    count: gpu.createTensor(`${label}.count`, "u32", [groups * blocks]),
    squares: createRowSquares(gpu, `${label}.squares`, K),
  };
}

/** The `squares` tensor of rows of width K ([8, K/8] f32, see LlmInt8RowsScratch), e.g. a row group's own. */
export function createRowSquares(gpu: Gpu, label: string, K: number, rows = 8): Tensor {
  return gpu.createTensor(label, "f32", [rows, Math.ceil(K / 8)]);
}

export function destroyLlmInt8RowsScratch(s: LlmInt8RowsScratch): void {
  for (const t of Object.values(s)) t.buffer.destroy();
}

/**
 * Scratch for two (or three) groups of up to 8 rows of width K, each quantized apart into its own part — all
 * in one pass (`llmInt8RowsGroups`), or a group at a time (`groups[g]`, views: q and values rows 8g …, xs and
 * the outlier list at 256-byte-aligned offsets, the first group's part of the scan's block arrays) — then the
 * first two multiplied in one pass (`pairRows`), a third alone.
 */
export interface PairedRowsScratch {
  K: number;
  q: Tensor; // [(G − 1)·qGroup + 8·K/4] u32: group g's rows from word g·qGroup (256-byte aligned)
  values: Tensor; // [8·G, K] f32
  xs: Tensor; // [G·xsGroup] f32
  outliers: Tensor; // [G·outliersGroup] u32
  qGroup: number;
  xsGroup: number;
  outliersGroup: number;
  groups: LlmInt8RowsScratch[]; // G of them
}

export function createPairedRowsScratch(
  gpu: Gpu,
  label: string,
  K: number,
  count: 2 | 3 = 2,
): PairedRowsScratch {
  if (!(K % 4 === 0 && K >= 4 && K <= maxLlmInt8RowsK)) {
    throw new Error(`paired LLM.int8 rows: K=${K} (a multiple of 4 ≤ ${maxLlmInt8RowsK})`);
  }
  // The second group's parts start on bindable offsets (256 bytes); values rows need K % 8 == 0 for that.
  if ((maxLlmInt8Rows * K * 4) % storageOffsetAlign !== 0) {
    throw new Error(`paired LLM.int8 rows: K=${K} puts the second group's values off a 256-byte boundary`);
  }
  const words = storageOffsetAlign / 4;
  const rowWords = (maxLlmInt8Rows * K) / 4;
  const qGroup = Math.ceil(rowWords / words) * words;
  const xsGroup = words, outliersGroup = Math.ceil((1 + K) / words) * words;
  const q = gpu.createTensor(`${label}.pair_q`, "u32", [(count - 1) * qGroup + rowWords]);
  const values = gpu.createTensor(`${label}.pair_values`, "f32", [count * maxLlmInt8Rows, K]);
  const xs = gpu.createTensor(`${label}.pair_xs`, "f32", [count, xsGroup]);
  const outliers = gpu.createTensor(`${label}.pair_outliers`, "u32", [count, outliersGroup]);
  const shared = createScanArrays(gpu, label, K, count);
  const group = (g: number): LlmInt8RowsScratch => ({
    ...shared,
    q: new Tensor(q.buffer, "u32", [maxLlmInt8Rows, K / 4], q.label, g * qGroup * 4),
    xs: reshape(rowsView(xs, g, 1), [xsGroup]),
    outliers: frontView(rowsView(outliers, g, 1), [1 + K]),
    values: rowsView(values, g * maxLlmInt8Rows, maxLlmInt8Rows),
  });
  return {
    K,
    q,
    values,
    xs: reshape(xs, [count * xsGroup]),
    outliers: reshape(outliers, [count * outliersGroup]),
    qGroup,
    xsGroup,
    outliersGroup,
    groups: Array.from({ length: count }, (_, g) => group(g)),
  };
}

export function destroyPairedRowsScratch(s: PairedRowsScratch): void {
  for (const t of [s.q, s.values, s.xs, s.outliers]) t.buffer.destroy();
  destroyLlmInt8RowsScratch(s.groups[0]);
}

/** What `llmInt8Rows` produced for T rows: the int8 side and where the outlier columns' values are. */
export interface QuantizedRows {
  rows: number;
  K: number;
  q: Tensor;
  xs: Tensor;
  outliers: Tensor;
  values: Tensor; // x itself, or scratch.values
  /**
   * Two row groups quantized apart (each its own scales and outlier columns), multiplied in one pass: the
   * first `first` rows are one group; the other's int8 rows start at word `q` of q, its scales at xs[xs],
   * its outlier list at outliers[outliers] and its rows as multiplied at row `values` of values. See
   * `pairRows`.
   */
  halves?: { first: number; q: number; xs: number; outliers: number; values: number };
}

/**
 * Fewest rows of a second group worth pairing with a full first one: a pair's product costs about what 16
 * rows do whatever the second group holds. H200, `llm-int8-batched` (PERF.md v78): 8 + 1 rows 452.6 → 437.3
 * tokens/s paired, 8 + 4 550.0 → 562.1, 8 + 8 671.3 → 723.9.
 */
export const minPairedRows = 4;

/**
 * Two groups' quantized rows (each from `llmInt8Rows` into its part of `joint`, `joint.groups[0]` then
 * `[1]`) as the rows of one product: each weight byte streamed once for both (kernels/matvec_dp4a.wgsl with
 * SPLIT, a half a group: the first group, the larger, sets the pipeline's tokens a half). x: both groups'
 * input rows, one after the other (where the rows were not normed, the outlier columns' values come from
 * there).
 */
export function pairRows(
  a: QuantizedRows,
  b: QuantizedRows,
  joint: PairedRowsScratch,
  x: Tensor,
): QuantizedRows {
  if (a.K !== b.K || a.K !== joint.K || a.rows > maxLlmInt8Rows || b.rows < 1 || b.rows > a.rows) {
    throw new Error(
      `pairRows: groups of ${a.rows} and ${b.rows} rows of ${a.K}/${b.K} (the first the larger)`,
    );
  }
  const normed = [a, b].map((g, i) => g.values.buffer === joint.groups[i].values.buffer);
  if (normed[0] !== normed[1]) throw new Error("pairRows: one group normed, the other not");
  expectTensor("pairRows x", x, "f32", [a.rows + b.rows, a.K]);
  return pairedRows(joint, [a.rows, b.rows], normed[0], x);
}

/** Two groups' rows in `joint` as one product's (see QuantizedRows.halves). */
function pairedRows(
  joint: PairedRowsScratch,
  rows: [number, number],
  normed: boolean,
  x: Tensor,
): QuantizedRows {
  return {
    rows: rows[0] + rows[1],
    K: joint.K,
    q: joint.q,
    xs: joint.xs,
    outliers: joint.outliers,
    values: normed ? joint.values : x,
    halves: {
      first: rows[0],
      q: joint.qGroup,
      xs: joint.xsGroup,
      outliers: joint.outliersGroup,
      values: normed ? maxLlmInt8Rows : rows[0],
    },
  };
}

/**
 * Fewest rows for which the model has wo and w2 leave Σout² for the next norm (`squares`). H100, batch steps
 * in `llm-int8` (bench/results/2026-11-27-h100-v33-squares-ab-*.json): at 8 rows the hidden-state scans went
 * from 1.20 to 0.75 ms a step (483.6 → 494.1 tokens/s), at 4 rows 295.1 → 297.6 tokens/s; at one row the
 * scan's own sum is two round trips and the products' extra epilogue cost more (10.89 → 10.96 ms a token).
 * H200, `llm-int8-batched`, alternating twice (PERF.md v76): from 3 rows instead of 4, batch 3 10.65 → 9.99 ms
 * a step (280.7 → 299.0 tokens/s), batch 2 and 4 unchanged; from 2, batch 2 8.65 → 8.74.
 */
export const minRowsForSquares = 3;

/** Σx² of each row of a matrix kernel's output, in parts: row t's are squares[t, 0 … parts−1]. */
export interface RowSquares {
  squares: Tensor; // [8, ≥ parts] f32
  parts: number;
}

export interface LlmInt8RowsOptions {
  /**
   * RMSNorm folded in: the rows are x · rsqrt(mean(x²) + eps) · weight; with `sums`, Σx² of x (as the
   * matrix kernel that wrote x left it) instead of a sum over x in every workgroup.
   */
  norm?: { weight: Tensor; eps: number; sums?: RowSquares };
  threshold?: number;
}

/**
 * The activation side of LLM.int8 for T ≤ 8 rows of width K: outlier columns (some |v| ≥ threshold),
 * per-row scale over the rest, int8 rows with the outlier columns zeroed (kernels/llm_int8_rows_scan.wgsl,
 * then kernels/llm_int8_rows_pack.wgsl).
 * x: [T, K] f32; scratch from createLlmInt8RowsScratch (rows ≥ T, width K).
 */
export function llmInt8Rows(
  r: Recorder,
  x: Tensor,
  scratch: LlmInt8RowsScratch,
  opts: LlmInt8RowsOptions = {},
): QuantizedRows {
  const T = x.shape[0];
  const K = scratch.outliers.shape[0] - 1;
  expectTensor("llmInt8Rows x", x, "f32", [T, K]);
  if (!(T >= 1 && T <= scratch.q.shape[0])) {
    throw new Error(`llmInt8Rows: ${T} rows, the scratch holds 1..${scratch.q.shape[0]}`);
  }
  if (opts.norm) expectTensor("llmInt8Rows norm weight", opts.norm.weight, "f32", [K]);
  const threshold = opts.threshold ?? llmInt8Threshold;
  if (!(threshold > 0)) throw new Error(`llmInt8Rows: threshold ${threshold} must be > 0`);
  const sums = opts.norm?.sums;
  if (sums) {
    expectTensor("llmInt8Rows sums", sums.squares, "f32", [8, -1]);
    if (!(sums.parts >= 1 && sums.parts <= sums.squares.shape[1])) {
      throw new Error(`llmInt8Rows: ${sums.parts} parts of Σx² in a [8, ${sums.squares.shape[1]}] tensor`);
    }
  }
  const blocks = recordRowsScan(r, x, scratch.values, scratch, {
    norm: opts.norm,
    threshold,
    sums: sums && { squares: sums.squares, parts: [sums.parts] },
    rows: [T],
  });
  const values = opts.norm ? scratch.values : x;
  return llmInt8Pack(r, { rows: T, K, scratch, values, blocks, perPackBlock: 1 }, x.label);
}

/**
 * The rows scan's dispatch (kernels/llm_int8_rows_scan.wgsl) for 1–3 row groups of x (the first's rows, then
 * the others' from row strides.x on, one stride a group; their values and Σx² rows likewise), into `values`
 * and the scan arrays of `arrays`. Returns the blocks of the grid.
 */
function recordRowsScan(
  r: Recorder,
  x: Tensor,
  values: Tensor,
  arrays: Pick<LlmInt8RowsScratch, "colbits" | "partial" | "count">,
  o: {
    norm?: { weight: Tensor; eps: number };
    threshold: number;
    sums?: { squares: Tensor; parts: number[] }; // parts of each group's rows
    rows: number[];
    strides?: { x: number; values: number }; // vec4s
  },
): number {
  const k4 = (x.shape[1] ?? 0) / 4;
  const blocks = Math.ceil(k4 / blockColumns);
  const stride = o.sums?.squares.shape[1] ?? 0;
  const G = o.rows.length;
  r.dispatch("llm_int8_rows_scan", {
    bindings: [
      x,
      o.norm?.weight ?? x,
      values,
      arrays.colbits,
      arrays.partial,
      arrays.count,
      o.sums?.squares ?? x,
    ],
    params: [
      o.rows[0],
      k4,
      { f32: o.norm?.eps ?? 0 },
      { f32: o.threshold },
      o.sums?.parts[0] ?? 0,
      stride,
      o.rows[1] ?? 0,
      o.strides?.x ?? 0,
      o.strides?.values ?? 0,
      G > 1 ? maxLlmInt8Rows * stride : 0,
      o.rows[2] ?? 0,
      o.sums?.parts[2] ?? 0,
    ],
    workgroups: [blocks, G],
    constants: { MODE: o.sums ? 2 : o.norm ? 1 : 0, BC: blockColumns },
    label: `llm_int8_rows_scan ${x.label}${G > 1 ? ` (${G} groups)` : ""}`,
  });
  return blocks;
}

/**
 * The rows pack's dispatch (kernels/llm_int8_rows_pack.wgsl) for 1–3 row groups: group g's values, int8 rows,
 * scales and outlier list g strides on in each.
 */
function recordRowsPack(
  r: Recorder,
  values: Tensor,
  arrays: Pick<LlmInt8RowsScratch, "colbits" | "partial" | "count">,
  out: { q: Tensor; xs: Tensor; outliers: Tensor },
  o: {
    K: number;
    rows: number[];
    blocks: number;
    perPackBlock: number;
    strides?: { values: number; q: number; xs: number; outliers: number };
    label: string;
  },
): void {
  const st = o.strides;
  const G = o.rows.length;
  r.dispatch("llm_int8_rows_pack", {
    bindings: [values, arrays.colbits, arrays.partial, arrays.count, out.q, out.xs, out.outliers],
    params: [
      o.rows[0],
      o.K / 4,
      o.blocks,
      o.perPackBlock,
      o.rows[1] ?? 0,
      st?.values ?? 0,
      st?.q ?? 0,
      st?.xs ?? 0,
      st?.outliers ?? 0,
      o.rows[2] ?? 0,
    ],
    workgroups: [Math.ceil(o.K / 4 / blockColumns), G],
    constants: { BC: blockColumns },
    label: `llm_int8_rows_pack ${o.label}${G > 1 ? ` (${G} groups)` : ""}`,
  });
}

/** The norm's Σx² of every group of `llmInt8RowsGroups`: each group's 8 rows of one tensor, parts by group. */
export interface GroupSquares {
  squares: Tensor; // [8·G, stride] f32: group g's rows from row 8g
  parts: number[]; // parts of each group's rows (the first two groups' equal: one product left them)
}

/**
 * Row groups that one rows pass (and the groups' pack) takes into `joint`: 2 groups of up to 8 rows, the first
 * the larger, or 3 after two of 8, no more than `joint` has parts for.
 */
export function expectRowGroups(what: string, rows: number[], joint: PairedRowsScratch): void {
  const [first, second] = rows;
  if (
    !(rows.length >= 2 && rows.length <= joint.groups.length && first <= maxLlmInt8Rows &&
      rows.every((n) => n >= 1 && n <= first) && (rows.length === 2 || first + second === 2 * maxLlmInt8Rows))
  ) {
    throw new Error(
      `${what}: 2 groups, the first the larger, or 3 after two of 8, in ${joint.groups.length}`,
    );
  }
}

/**
 * `llmInt8Rows` of two or three row groups at once, each quantized apart into its part of `joint` (its own
 * outlier columns and scales, the numbers of a pass of its own), in the two dispatches of one group's passes
 * — group g on the grids' row g — then the first two as one product's rows (what `pairRows` makes of two
 * calls) and a third as its own. x: the groups' rows one after the other, [Σ rows, K]; the first group the
 * largest, the second group's rows from row `rows[0]`, a third group's from row 16 (it follows two groups of
 * 8). With the norm, `sums` replaces the options' own Σx² (`LlmInt8RowsOptions.norm.sums`, not taken here).
 */
export function llmInt8RowsGroups(
  r: Recorder,
  x: Tensor,
  rows: number[],
  joint: PairedRowsScratch,
  opts: LlmInt8RowsOptions & { sums?: GroupSquares } = {},
): QuantizedRows[] {
  const K = joint.K, k4 = K / 4;
  const G = rows.length;
  const [first, second, third = 0] = rows;
  const what = `llmInt8RowsGroups (${rows.join(" + ")} rows)`;
  expectRowGroups(what, rows, joint);
  expectTensor(`${what} x`, x, "f32", [first + second + third, K]);
  if (opts.norm?.sums) throw new Error(`${what}: the groups' Σx² go in opts.sums`);
  if (opts.norm) expectTensor(`${what} norm weight`, opts.norm.weight, "f32", [K]);
  const threshold = opts.threshold ?? llmInt8Threshold;
  if (!(threshold > 0)) throw new Error(`${what}: threshold ${threshold} must be > 0`);
  const sums = opts.sums;
  if (sums) {
    if (!opts.norm) throw new Error(`${what}: Σx² without a norm`);
    expectTensor(`${what} sums`, sums.squares, "f32", [G * maxLlmInt8Rows, -1]);
    if (
      !(sums.parts.length === G && sums.parts[0] === sums.parts[1] &&
        sums.parts.every((n) => n >= 1 && n <= sums.squares.shape[1]))
    ) {
      throw new Error(`${what}: parts ${sums.parts} of Σx² in [${sums.squares.shape}]`);
    }
  }
  const normed = sums !== undefined || opts.norm !== undefined;
  const blocks = recordRowsScan(r, x, joint.values, joint.groups[0], {
    norm: opts.norm,
    threshold,
    sums,
    rows,
    strides: { x: first * k4, values: maxLlmInt8Rows * k4 },
  });
  return llmInt8PackGroups(r, { rows, joint, values: normed ? null : x, blocks, perPackBlock: 1 }, x.label);
}

/**
 * Row groups whose scan is done, each group's into its part of the joint scratch's scan arrays (group y's
 * colbits and count from y·K/4, partial from 8·y·K/4) — by `llmInt8RowsGroups`' scan, or by the kernel that
 * wrote them (the attention's combine pass): what the groups' pack reads.
 */
export interface ScannedRowGroups {
  rows: number[]; // 2 or 3 groups, as llmInt8RowsGroups takes them
  joint: PairedRowsScratch;
  /** The rows as multiplied, [Σ rows, K], one group after the other; null: the joint scratch's (a norm's). */
  values: Tensor | null;
  blocks: number; // of each group's partial and count
  perPackBlock: number; // of those blocks to one of the pack's (32 vec4 columns)
}

/**
 * Pass 2 of `llmInt8RowsGroups` (one pack, group g on the grid's row g): the first two groups as one
 * product's rows, a third alone.
 */
export function llmInt8PackGroups(
  r: Recorder,
  s: ScannedRowGroups,
  label = (s.values ?? s.joint.values).label,
): QuantizedRows[] {
  const { rows, joint, values } = s;
  const K = joint.K, k4 = K / 4;
  const [first, second, third = 0] = rows;
  recordRowsPack(r, values ?? joint.values, joint.groups[0], joint, {
    K,
    rows,
    blocks: s.blocks,
    perPackBlock: s.perPackBlock,
    // Values: x's rows one group after the other, or the scratch's, 8 rows a group (vec4s).
    strides: {
      values: (values ? first : maxLlmInt8Rows) * k4,
      q: joint.qGroup,
      xs: joint.xsGroup,
      outliers: joint.outliersGroup,
    },
    label,
  });
  const pair = pairedRows(joint, [first, second], !values, values ?? joint.values);
  if (rows.length === 2) return [pair];
  const g = joint.groups[2];
  return [pair, packedRows(g, third, values ? rowsView(values, 2 * maxLlmInt8Rows, third) : g.values)];
}

/** T rows that a pack left in `scratch`, as a product takes them (`values`: where their outlier columns are). */
function packedRows(scratch: LlmInt8RowsScratch, T: number, values: Tensor): QuantizedRows {
  return { rows: T, K: values.shape[1], q: scratch.q, xs: scratch.xs, outliers: scratch.outliers, values };
}

/** Rows whose scan is done — by the rows scan, or by the kernel that wrote them: what the pack reads. */
export interface ScannedRows {
  rows: number;
  K: number;
  scratch: LlmInt8RowsScratch; // colbits, partial and count filled
  values: Tensor; // [rows, K] the rows as multiplied
  blocks: number; // blocks of partial and count
  perPackBlock: number; // of those blocks to one of the pack's (32 vec4 columns)
}

/** Vec4 columns of the pack's blocks: a scan by another kernel takes blocks that divide them. */
export const llmInt8PackBlockColumns = blockColumns;

/** Pass 2 of the activation side (kernels/llm_int8_rows_pack.wgsl): the int8 rows, scales and outlier list. */
export function llmInt8Pack(r: Recorder, s: ScannedRows, label = s.values.label): QuantizedRows {
  const { rows: T, K, scratch, values } = s;
  if (s.blocks * 8 > scratch.partial.shape[0] || s.blocks > scratch.count.shape[0]) {
    throw new Error(`llmInt8Pack: ${s.blocks} blocks, the scratch holds ${scratch.count.shape[0]}`);
  }
  recordRowsPack(r, values, scratch, scratch, {
    K,
    rows: [T],
    blocks: s.blocks,
    perPackBlock: s.perPackBlock,
    label,
  });
  return packedRows(scratch, T, values);
}

/**
 * Tiling of kernels/matvec_dp4a.wgsl: R rows a thread (2 or 4 with a gate·up product), LANES lanes a row, U
 * 16-byte chunks of each row in flight; `phases` (default 1): K streamed in that many parts, each part's
 * outlier columns multiplied right after it.
 */
export interface Dp4aConfig {
  R: 1 | 2 | 4;
  LANES: 4 | 8 | 16 | 32;
  U: 1 | 2 | 4;
  phases?: 1 | 2 | 4 | 8;
  /**
   * 2: the workgroup's halves stream the same rows for half the tokens each (from 2 rows): fewer sums a
   * thread, so more threads resident, for the weights read twice (the second time mostly from cache).
   */
  split?: 1 | 2;
}

/**
 * The tiling for a plain N×K matrix: 16 lanes a row; 4 rows a thread with two chunks in flight for the tall
 * matrices (the LM head), else four chunks in flight with 2 rows a thread for wqkv's 8192 rows and 1 for the
 * 6144 rows of wo and w2. For wqkv, wo and w2, the fastest or within ~3 % of it at 1, 2, 4 and 8 rows on an
 * H100 (bench/results/2026-11-27-h100-matvec-dp4a-vec4.log, …-u4.log); in the model (PERF.md v48) no other
 * tiling of theirs or the LM head's gained at batch 8 without losing at one row; on an H200 at 2, 4 and 8 rows
 * (PERF.md v76) no other R, LANES or U did. w2 at T rows takes `w2PhasesFor(T)` parts of K.
 *
 * At 8 rows wqkv and w2 take the workgroup's halves on 4 tokens each (`split`), with twice the rows a thread:
 * H200, `llm-int8-batched`, alternating three times (PERF.md v77): batch 8 622.3–622.8 → 629.8–630.4 tokens/s
 * (12.81–12.82 → 12.66–12.67 ms a step; w2 alone 626.0–626.7). At 5–7 rows the same tilings lost (batch 5
 * 453 → 441), and gate·up and wo lost with halves at every row count (gate·up at 8 rows 624.6 → 570–586).
 */
export function dp4aConfigFor(N: number, K: number, T: number): Dp4aConfig {
  if (T > maxLlmInt8Rows) return pairedConfigFor(N, K);
  if (N >= 16384) return { R: 4, LANES: 16, U: 2 };
  if (K >= 16384) {
    return T === 8
      ? { R: 2, LANES: 16, U: 4, phases: 1, split: 2 }
      : { R: 1, LANES: 16, U: 4, phases: w2PhasesFor(T) };
  }
  if (N >= 8192) return T === 8 ? { R: 4, LANES: 16, U: 4, split: 2 } : { R: 2, LANES: 16, U: 4 };
  return { R: 1, LANES: 16, U: 4 };
}

/**
 * w2's K (16384, the feed-forward's silu(gate)·up) in 4 parts below 5 rows, each part's outlier columns
 * multiplied right after the main loop streamed it. Swept after the whole row, their scattered weight bytes
 * most likely came from memory again, the rows having left L2 (50 MB) while the ~100 MB matrix streamed (four
 * columns' loads at once instead of one changed nothing, so it is not their latency): in the bench's model
 * (123 outlier columns at 8 rows) w2 took 3.56 ms a step in the kernel profile, 2.84 with no outlier sweep at
 * all, 3.30 in 4 parts. In the step (H100, PERF.md v50): decode 10.42 → 10.35 ms, batch 2–6 +1 %, batch 8
 * unchanged. On an H200 (`llm-int8-batched`, alternating twice, PERF.md v76) one part is faster from 5 rows:
 * batch 5 / 6 / 7 / 8 445.0 / 509.0 / 555.8 / 611.3 → 450.5 / 515.7 / 562.8 / 623.4 tokens/s; at 4 rows the
 * same, at 2 slower (230.2 → 227.7). The other products keep one part: with parts their f32 outlier sums live
 * through the main loop, and all products in 4 parts cost gate·up 1 ms a step at 8 rows (batch 8 541 → 506
 * tokens/s).
 */
function w2PhasesFor(T: number): 1 | 4 {
  return T >= 5 ? 1 : 4;
}

/**
 * Two row groups of up to 8 in one pass (`pairRows`, a group a half; up to 16 rows): the fastest of four
 * tilings a product in a probe on an H200 at 8 + 8 rows (PERF.md v78; µs a call against the two groups' two
 * 8-row calls): wqkv R4 L16 U4 43.3 (67.2), wo R1 L8 U4 42.7 (56.6), w2 R1 L8 U4 in one part 93.0 (132.6);
 * gate·up below. At even groups of 5–7 rows these were the fastest of the same probe's tilings too (v79).
 * scripts/bench_paired_rows.ts times them (and others) on the committed path.
 */
function pairedConfigFor(N: number, K: number): Dp4aConfig {
  if (K >= 16384) return { R: 1, LANES: 8, U: 4, phases: 1, split: 2 };
  // The LM head (v81): 308.4 µs a call at 8 + 8 rows against 365.0 with R4 L16 U4 and 429.8 for two calls;
  // in the model, batch 16 824.3 against 820.8–821.2 tokens/s.
  if (N >= 16384) return { R: 4, LANES: 8, U: 4, split: 2 };
  return N >= 8192 ? { R: 4, LANES: 16, U: 4, split: 2 } : { R: 1, LANES: 8, U: 4, split: 2 };
}

/** gate·up for two row groups in one pass: 138.1 µs a call against 192.9 for two 8-row calls (v78's probe). */
export const dp4aPairedGateUpConfig: Dp4aConfig = { R: 4, LANES: 8, U: 4, split: 2 };

/**
 * The gate·up product's tiling: 2 gate and 2 up rows a thread, 8 lanes a row, two chunks in flight. Chosen in
 * the model, the sweeps disagreeing with it (PERF.md v48, `deno task bench --int8-matmul llm-int8 --sections
 * decode,batch`, three alternating pairs on an H100): against 16 lanes a row, batch 8 505.7 → 526.3 tokens/s,
 * batch 4 307.6 → 316.7, decode 10.50 → 10.43 ms.
 */
export const dp4aGateUpConfig: Dp4aConfig = { R: 4, LANES: 8, U: 2 };

/**
 * The tiling on a CPU adapter (Mesa's llvmpipe, which runs the 256 threads as 32 vectors of 8 lanes and
 * switches between them at every barrier): 4 lanes a row, one chunk in flight, one row a thread (two for
 * gate·up, which takes R ≥ 2). The tiny model's `llm-int8` decode step there: 12.05 → 7.54 ms at ctx 512, a
 * batch-8 step's kernels 96.5 → 70.6 ms, a follow-up chunk's 193 → 131 (8 lanes: 11.36 ms, 67.2, 139; 4
 * lanes with two chunks: 7.08, 71.3, 141).
 */
export function dp4aCpuConfig(gateUp: boolean): Dp4aConfig {
  return { R: gateUp ? 2 : 1, LANES: 4, U: 1 };
}

type Int8Linear = Extract<LinearWeights, { kind: "int8" }>;

function int8Of(what: string, w: LinearWeights): Int8Linear {
  if (w.kind !== "int8" || w.bias) throw new Error(`${what}: needs int8 weights without bias`);
  return w;
}

/**
 * Tokens of a half that kernels/matvec_dp4a.wgsl's epilogue reduces in one round of barriers (its NR): 8 where
 * every token's R ≤ 2 slots fit in the reduction arrays at once, 4 from 3 tokens, else 2 (each lane's integer
 * sums then stay exact to the end). From 3 tokens the lanes' sums go through the arrays as f32, already times
 * their token's scale, so a round holds twice the tokens. With Σout² (`squares`) each thread keeps at most two
 * outputs a round: a round with more keeps fewer tokens. All workgroups of these products run in one wave, so
 * the epilogue's rounds are a tail nothing overlaps: at 8 rows one round instead of four took w1 (16384×6144)
 * 60.3 → 54.8 µs a call with its rows pass (H200, PERF.md v96). In the model (`llm-int8-batched`, alternating
 * three times against 2 a round): batch 3 / 4 / 6 / 8 / 12 / 16 / 20 301.4–301.9 / 386.4–386.5 / 512.8–514.3 /
 * 630.5–631.5 / 716.4–716.8 / 833.1–833.6 / 738.8–739.3 → 314.6–314.7 / 402.7–403.0 / 551.8–552.0 /
 * 676.9–677.3 / 745.7–746.2 / 885.0–885.2 / 777.7–778.2 tokens/s; at most 4 a round: 667.2–667.6 at batch 8.
 */
export function dp4aTokensPerRound(
  o: { R: number; tokens: number; split: number; rowsPerGroup: number; squares: boolean },
): 2 | 4 | 8 {
  const fits = (nr: number) => !o.squares || nr * o.split * o.rowsPerGroup <= 2 * 256;
  if (o.R <= 2 && o.tokens >= 5 && fits(8)) return 8;
  return o.tokens >= 3 && fits(4) ? 4 : 2;
}

/**
 * The LLM.int8 product of the quantized rows with W: out[t, n] (+)= …, out [T, N]. With `up` (the up
 * matrix, w the gate, same shape): out[t, n] = silu(gate)·up of the two products, the feed-forward's w2
 * input, out [T, N]. With `squares` ([8, ≥ N/8] f32, not with `up`): each workgroup also leaves Σ out² of
 * every row over its outputs there, returned for the next rows pass's RMSNorm (LlmInt8RowsOptions.norm).
 * Rows from `pairRows` (two groups, up to 16 rows) take a half of the kernel each; their `squares` are
 * [16, ≥ N/8], the second group's from row 8.
 */
export function matvecLlmInt8(
  r: Recorder,
  a: QuantizedRows,
  w: LinearWeights,
  out: Tensor,
  opts: { accumulate?: boolean; up?: LinearWeights; config?: Dp4aConfig; squares?: Tensor } = {},
): RowSquares | null {
  const first = int8Of("matvecLlmInt8", w);
  const up = opts.up ? int8Of("matvecLlmInt8 up", opts.up) : null;
  const [N, K] = first.weight.shape;
  const c = opts.config ?? dp4aOverride(up !== null, a.rows, N, K) ??
    (r.fallbackAdapter
      ? dp4aCpuConfig(up !== null)
      : up
      ? (a.rows > maxLlmInt8Rows ? dp4aPairedGateUpConfig : dp4aGateUpConfig)
      : dp4aConfigFor(N, K, a.rows));
  const what = `matvec_dp4a ${first.weight.label}`;
  if (K !== a.K || (up && (up.weight.shape[0] !== N || up.weight.shape[1] !== K))) {
    throw new Error(
      `${what}: weights ${first.weight.shape}${up ? ` / ${up.weight.shape}` : ""} vs rows of ${a.K}`,
    );
  }
  if (up && (opts.accumulate || c.R === 1)) {
    throw new Error(`${what}: the gate·up product takes R ≥ 2 and no accumulate`);
  }
  const T = a.rows;
  const h = a.halves;
  const split = h ? 2 : c.split ?? 1;
  // Each half holds at most 8 tokens' sums.
  const maxT = h ? 2 * maxLlmInt8Rows : 8;
  if (!(T >= 1 && T <= maxT && (h || (a.q.shape[1] * 4 === K && a.q.shape[0] >= T)))) {
    throw new Error(`${what}: needs 1 ≤ T ≤ ${maxT} rows of q [≥T, K/4] (T=${T}, q ${a.q.shape}, K=${K})`);
  }
  if (split === 2 && T < 2) throw new Error(`${what}: split 2 needs T ≥ 2 (T=${T})`);
  const firstRows = h ? h.first : Math.ceil(T / split);
  if (h) {
    if (
      !(firstRows <= 8 && T - firstRows >= 1 && T - firstRows <= firstRows &&
        h.q % 4 === 0 && h.q >= (firstRows * K) / 4 && a.q.numel >= h.q + ((T - firstRows) * K) / 4 &&
        a.xs.shape[0] >= h.xs + T - firstRows && a.outliers.shape[0] > h.outliers &&
        h.values >= firstRows && a.values.shape[0] >= h.values + T - firstRows)
    ) {
      throw new Error(
        `${what}: halves of ${firstRows} and ${T - firstRows} rows (xs at ${h.xs}, list at ${h.outliers})`,
      );
    }
  } else if (a.xs.shape[0] < T) {
    throw new Error(`${what}: ${T} rows, xs holds ${a.xs.shape[0]}`);
  }
  expectTensor(`${what} out`, out, "f32", [T, N]);
  const rowsPerGroup = (up ? c.R / 2 : c.R) * (256 / (split * c.LANES));
  const { workgroups, groupsPerRow } = flatGrid(N, rowsPerGroup);
  const parts = Math.ceil(N / rowsPerGroup);
  const sq = opts.squares;
  if (sq) {
    const sqRows = h ? 2 * maxLlmInt8Rows : maxLlmInt8Rows; // a group's rows each, one after the other
    expectTensor(`${what} squares`, sq, "f32", [sqRows, -1]);
    if (up || sq.shape[1] < parts) {
      throw new Error(`${what}: Σout² takes no gate·up and [${sqRows}, ≥ ${parts}] (got ${sq.shape})`);
    }
  }
  const u = up ?? first;
  const NR = dp4aTokensPerRound({ R: c.R, tokens: firstRows, split, rowsPerGroup, squares: !!sq });
  // Bindings 2, 5 and 11 are q and the weights again, seen as 16-byte vectors (VEC).
  r.dispatch("matvec_dp4a", {
    bindings: [
      a.q,
      a.q,
      a.xs,
      first.weight,
      first.weight,
      first.scale,
      out,
      a.outliers,
      a.values,
      u.weight,
      u.weight,
      u.scale,
      sq ?? out,
    ],
    params: [
      N,
      K / 4,
      Math.ceil(K / 16),
      groupsPerRow,
      opts.accumulate ? 1 : 0,
      sq ? sq.shape[1] : 0,
      h ? h.xs : firstRows,
      h ? h.outliers : 0,
      h ? h.q : (firstRows * K) / 4,
      T,
      h ? h.values : firstRows,
      h ? maxLlmInt8Rows : firstRows,
    ],
    workgroups,
    constants: {
      SPLIT: split,
      TH: firstRows,
      R: c.R,
      LANES: c.LANES,
      U: c.U,
      VEC: K % 16 === 0 ? 1 : 0,
      GLU: up ? 1 : 0,
      SQ: sq ? 1 : 0,
      PHASES: c.phases ?? 1,
      NR,
    },
    label: `matvec_dp4a ${first.weight.label}`,
  });
  return sq ? { squares: sq, parts } : null;
}
