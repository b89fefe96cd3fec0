import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import type { LinearWeights } from "./linear.ts";
import { flatGrid } from "./grid.ts";
import { llmInt8Threshold } from "./llm_int8.ts";

// bitsandbytes' LLM.int8 for a few rows (decode steps, short chunks; INT8_MATMUL=llm-int8):
//   v[t, k]    the row as the layer multiplies it (x, RMSNorm(x)·g, or silu(gate)·up);
//   outlier k  some row has |v[t, k]| ≥ θ: its column leaves the int8 product and is multiplied in f32;
//   sca[t]     max |v[t, k]| over the values below θ; xs[t] = sca[t]/127;
//   q[t, k]    0 in an outlier column, else round_half_even(v[t, k] · 127/sca[t]);
//   out[t, n]  = s[n] · (xs[t] · Σ_k q[t, k]·W[n, k] + Σ_{k outlier} v[t, k]·W[n, k]).
// The activation side takes two dispatches over blocks of columns (kernels/llm_int8_rows_scan.wgsl,
// kernels/llm_int8_rows_pack.wgsl: no workgroup waits for another), the product one
// (kernels/matvec_dp4a.wgsl, int8 × int8 through dot4I8Packed). The older kernels/quantize_rows_i8.wgsl (no
// outlier columns) stays for scripts/bench_matvec_dp4a.ts.

/** Most rows one LLM.int8 row pass takes (one workgroup; the matrix kernel's TT). */
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
  values: Tensor; // [rows, K] f32: the rows as multiplied, when that is not x (norm or silu folded in)
  colbits: Tensor; // [K/4] u32: outlier bits of each vec4 column
  partial: Tensor; // [blocks·8] f32: each block's row maxima below θ
  count: Tensor; // [blocks] u32: each block's outlier columns
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
  const blocks = Math.ceil(K / 4 / blockColumns);
  return {
    q: gpu.createTensor(`${label}.q`, "u32", [rows, K / 4]),
    xs: gpu.createTensor(`${label}.xs`, "f32", [rows]),
    outliers: gpu.createTensor(`${label}.outliers`, "u32", [1 + K]),
    values: gpu.createTensor(`${label}.values`, "f32", [rows, K]),
    colbits: gpu.createTensor(`${label}.colbits`, "u32", [K / 4]),
    partial: gpu.createTensor(`${label}.partial`, "f32", [blocks * 8]),
    count: gpu.createTensor(`${label}.count`, "u32", [blocks]),
  };
}

export function destroyLlmInt8RowsScratch(s: LlmInt8RowsScratch): void {
  for (const t of Object.values(s)) t.buffer.destroy();
}

/** What `llmInt8Rows` produced for T rows: the int8 side and where the outlier columns' values are. */
export interface QuantizedRows {
  rows: number;
  K: number;
  q: Tensor;
  xs: Tensor;
  outliers: Tensor;
  values: Tensor; // x itself, or scratch.values
}

export interface LlmInt8RowsOptions {
  /** RMSNorm folded in: the rows are x · rsqrt(mean(x²) + eps) · weight. */
  norm?: { weight: Tensor; eps: number };
  /** x is [T, 2K] (gate | up): the rows are silu(gate) · up (the feed-forward's w2 input). */
  silu?: boolean;
  threshold?: number;
}

/**
 * The activation side of LLM.int8 for T ≤ 8 rows of width K: outlier columns (some |v| ≥ threshold),
 * per-row scale over the rest, int8 rows with the outlier columns zeroed (kernels/llm_int8_rows_scan.wgsl,
 * then kernels/llm_int8_rows_pack.wgsl).
 * x: [T, K] f32 ([T, 2K] with silu); scratch from createLlmInt8RowsScratch (rows ≥ T, width K).
 */
export function llmInt8Rows(
  r: Recorder,
  x: Tensor,
  scratch: LlmInt8RowsScratch,
  opts: LlmInt8RowsOptions = {},
): QuantizedRows {
  const T = x.shape[0];
  const K = scratch.outliers.shape[0] - 1;
  if (opts.norm && opts.silu) throw new Error("llmInt8Rows: norm and silu do not combine");
  expectTensor("llmInt8Rows x", x, "f32", [T, opts.silu ? 2 * K : K]);
  if (!(T >= 1 && T <= scratch.q.shape[0])) {
    throw new Error(`llmInt8Rows: ${T} rows, the scratch holds 1..${scratch.q.shape[0]}`);
  }
  if (opts.norm) expectTensor("llmInt8Rows norm weight", opts.norm.weight, "f32", [K]);
  const threshold = opts.threshold ?? llmInt8Threshold;
  if (!(threshold > 0)) throw new Error(`llmInt8Rows: threshold ${threshold} must be > 0`);
  const mode = opts.norm ? 1 : opts.silu ? 2 : 0;
  const blocks = scratch.count.shape[0];
  const values = mode ? scratch.values : x;
  r.dispatch("llm_int8_rows_scan", {
    bindings: [x, opts.norm?.weight ?? x, scratch.values, scratch.colbits, scratch.partial, scratch.count],
    params: [T, K / 4, { f32: opts.norm?.eps ?? 0 }, { f32: threshold }],
    workgroups: blocks,
    constants: { MODE: mode, BC: blockColumns },
    label: `llm_int8_rows_scan ${x.label}`,
  });
  r.dispatch("llm_int8_rows_pack", {
    bindings: [
      values,
      scratch.colbits,
      scratch.partial,
      scratch.count,
      scratch.q,
      scratch.xs,
      scratch.outliers,
    ],
    params: [T, K / 4, blocks],
    workgroups: blocks,
    constants: { BC: blockColumns },
    label: `llm_int8_rows_pack ${x.label}`,
  });
  return { rows: T, K, q: scratch.q, xs: scratch.xs, outliers: scratch.outliers, values };
}

/** Tiling of kernels/matvec_dp4a.wgsl. */
export interface Dp4aConfig {
  R: 1 | 2 | 4;
  LANES: 16 | 32 | 64;
  U: 1 | 2 | 4;
}

export const defaultDp4aConfig: Dp4aConfig = { R: 4, LANES: 32, U: 4 };

type Int8Linear = Extract<LinearWeights, { kind: "int8" }>;

/**
 * out[t, n] (+)= LLM.int8 product of the quantized rows with W (and, with `second`, rows n1… of out from a
 * second matrix of the same K: gate and up in one dispatch). out: [T, N (+ N₂)] f32.
 */
export function matvecLlmInt8(
  r: Recorder,
  a: QuantizedRows,
  w: LinearWeights,
  out: Tensor,
  opts: { accumulate?: boolean; config?: Dp4aConfig; second?: LinearWeights } = {},
): void {
  const first = int8Of("matvecLlmInt8", w);
  const second = opts.second ? int8Of("matvecLlmInt8 second", opts.second) : null;
  const [N1, K] = first.weight.shape;
  if (K !== a.K || (second && second.weight.shape[1] !== K)) {
    throw new Error(
      `matvecLlmInt8: weights of width ${K}${second ? `/${second.weight.shape[1]}` : ""} vs rows of ${a.K}`,
    );
  }
  const N = N1 + (second ? second.weight.shape[0] : 0);
  expectTensor("matvecLlmInt8 out", out, "f32", [a.rows, N]);
  recordDp4a(r, a.q, a.xs, first, out, a.rows, N1, opts.config ?? dp4aConfigFor(a.rows, N, second ? N1 : 0), {
    accumulate: opts.accumulate ?? false,
    outliers: a.outliers,
    values: a.values,
    second,
  });
}

/**
 * The tiling measured best on an H100 (bench/results/2026-11-26-h100-matvec-dp4a-llm-int8-rows.log):
 * R4 L32 U4 at one row, then R4 L32 U2 for the tallest matrices (gate/up) and R4 L64 U2 otherwise; with a
 * second matrix from row n1 on, the first of those (then narrower ones) whose workgroups do not straddle n1.
 */
function dp4aConfigFor(T: number, N: number, n1: number): Dp4aConfig {
  const best: Dp4aConfig = T === 1
    ? defaultDp4aConfig
    : N >= 16384
    ? { R: 4, LANES: 32, U: 2 }
    : { R: 4, LANES: 64, U: 2 };
  const fits = [best, { R: 4, LANES: 64, U: 2 }, { R: 2, LANES: 64, U: 4 }, { R: 1, LANES: 64, U: 4 }]
    .find((c) => n1 % (c.R * (256 / c.LANES)) === 0);
  return (fits ?? best) as Dp4aConfig;
}

function int8Of(what: string, w: LinearWeights): Int8Linear {
  if (w.kind !== "int8" || w.bias) throw new Error(`${what}: needs int8 weights without bias`);
  return w;
}

function recordDp4a(
  r: Recorder,
  xq: Tensor,
  xs: Tensor,
  w: Int8Linear,
  out: Tensor,
  T: number,
  n1: number,
  c: Dp4aConfig,
  o: { accumulate: boolean; outliers: Tensor; values: Tensor; second: Int8Linear | null },
): void {
  const N = out.shape[1];
  const K = w.weight.shape[1];
  if (!(T >= 1 && T <= 8 && xq.shape[1] * 4 === K && xq.shape[0] >= T && xs.shape[0] >= T)) {
    throw new Error(`matvec_dp4a: needs 1 ≤ T ≤ 8 rows of xq [≥T, K/4] (T=${T}, xq ${xq.shape}, K=${K})`);
  }
  const rowsPerGroup = c.R * (256 / c.LANES);
  if (o.second && n1 % rowsPerGroup !== 0) {
    throw new Error(`matvec_dp4a: the first matrix's ${n1} rows are not a multiple of ${rowsPerGroup}`);
  }
  const { workgroups, groupsPerRow } = flatGrid(N, rowsPerGroup);
  r.dispatch("matvec_dp4a", {
    bindings: [
      xq,
      xs,
      w.weight,
      w.scale,
      out,
      o.outliers,
      o.values,
      o.second?.weight ?? w.weight,
      o.second?.scale ?? w.scale,
    ],
    params: [N, K / 4, groupsPerRow, o.accumulate ? 1 : 0, n1],
    workgroups,
    constants: { TT: T, R: c.R, LANES: c.LANES, U: c.U },
    label: `matvec_dp4a ${w.weight.label}`,
  });
}

/** x [T, K] f32 → xq [T, K/4] u32 (int8 ×4, per-row absmax scaling) and scale [T] f32. K % 4 == 0. */
export function quantizeRowsI8(r: Recorder, x: Tensor, xq: Tensor, scale: Tensor): void {
  const [T, K] = x.shape;
  if (K % 4 !== 0) throw new Error(`quantizeRowsI8: K % 4 != 0 (K=${K})`);
  expectTensor("quantizeRowsI8 xq", xq, "u32", [T, K / 4]);
  expectTensor("quantizeRowsI8 scale", scale, "f32", [T]);
  r.dispatch("quantize_rows_i8", {
    bindings: [x, xq, scale],
    params: [K / 4],
    workgroups: [T, 1],
    label: `quantize_rows_i8 ${x.label}`,
  });
}

/**
 * The plain int8-activation product (no outlier columns) of scripts/bench_matvec_dp4a.ts:
 * out[t, n] (+)= scale[n] · xs[t] · Σ_q dot4I8Packed(xq[t, q], W[n, q]); `empty` is a [1 + K] u32 tensor
 * holding a zero count.
 */
export function matvecDp4a(
  r: Recorder,
  xq: Tensor,
  xs: Tensor,
  w: LinearWeights,
  out: Tensor,
  empty: Tensor,
  opts: { accumulate?: boolean; config?: Dp4aConfig } = {},
): void {
  const lw = int8Of("matvecDp4a", w);
  const T = out.shape[0];
  expectTensor("matvecDp4a out", out, "f32", [T, lw.weight.shape[0]]);
  recordDp4a(r, xq, xs, lw, out, T, lw.weight.shape[0], opts.config ?? defaultDp4aConfig, {
    accumulate: opts.accumulate ?? false,
    outliers: empty,
    values: xs, // never read: the count is 0
    second: null,
  });
}
