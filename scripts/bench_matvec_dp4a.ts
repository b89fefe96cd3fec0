// Experiment: the int8 linear for a few tokens as the model runs it in each INT8_MATMUL mode — weight-only
// (`linear`: exact, weights widened to f32) and LLM.int8 (the rows passes kernels/llm_int8_rows_scan.wgsl +
// llm_int8_rows_pack.wgsl, then kernels/matvec_dp4a.wgsl through dot4I8Packed) — at T = 1, 2, 4 and 8,
// beside the copy kernel, with the matvec at every tiling of the sweep and the rows passes alone: the issue's
// "dot4I8Packed matrix kernels with per-token int8 activations" measurement.
//   deno run -A scripts/bench_matvec_dp4a.ts [--quick] [--ms 200] [--out matvec_dp4a.json]
// Plain linear only (each of gate/up's two matrices is timed as one 16384-row linear). Every candidate's
// output is compared with the weight-only one's: for LLM.int8 the normalised error is the activation
// rounding (random activations, no outliers), not a bug (tests/kernels/matvec_dp4a_test.ts checks the
// kernel exactly); the rows passes alone write no output. Timing: the harness of src/bench/linear_sweep.ts
// (as scripts/bench_matvec.ts).
import { linear, type LinearWeights } from "../src/ops/linear.ts";
import {
  createLlmInt8RowsScratch,
  type Dp4aConfig,
  dp4aConfigFor,
  llmInt8Rows,
  type LlmInt8RowsScratch,
  matvecLlmInt8,
} from "../src/ops/matvec_dp4a.ts";
import {
  copyReference,
  type LinearIo,
  type LinearLaunch,
  runLinearSweep,
} from "../src/bench/linear_sweep.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out: outArg } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();
const copyGBps = await copyReference(gpu, timer, quick);

// kernels/matvec_dp4a.wgsl tilings (dp4aConfigFor picks one per shape).
const configs: Dp4aConfig[] = [
  { R: 1, LANES: 8, U: 2 },
  { R: 2, LANES: 8, U: 1 },
  { R: 2, LANES: 8, U: 2 },
  { R: 4, LANES: 8, U: 1 },
  { R: 4, LANES: 8, U: 2 },
  { R: 1, LANES: 16, U: 2 },
  { R: 2, LANES: 16, U: 2 },
  { R: 4, LANES: 16, U: 1 },
  { R: 4, LANES: 16, U: 2 },
  { R: 1, LANES: 32, U: 1 },
  { R: 1, LANES: 32, U: 2 },
  { R: 2, LANES: 32, U: 2 },
  { R: 4, LANES: 32, U: 2 },
  { R: 2, LANES: 4, U: 2 },
  { R: 4, LANES: 4, U: 2 },
  { R: 1, LANES: 16, U: 4 },
  { R: 2, LANES: 16, U: 4 },
  { R: 4, LANES: 16, U: 4 },
  { R: 2, LANES: 8, U: 4 },
  { R: 4, LANES: 8, U: 4 },
  { R: 2, LANES: 32, U: 4 },
];
const rowsScratch = (io: LinearIo): LlmInt8RowsScratch => ({
  q: io.extra.r_q,
  xs: io.extra.r_xs,
  outliers: io.extra.r_outliers,
  values: io.extra.r_values,
  colbits: io.extra.r_colbits,
  partial: io.extra.r_partial,
  count: io.extra.r_count,
  squares: io.extra.r_squares,
});
const int8 = (io: LinearIo): LinearWeights => ({ kind: "int8", weight: io.w, scale: io.scale, bias: null });
const llmInt8 = (config?: Dp4aConfig): LinearLaunch => (r, io) =>
  matvecLlmInt8(r, llmInt8Rows(r, io.x, rowsScratch(io)), int8(io), io.out, { accumulate: true, config });
const candidates = (N: number, K: number): [string, LinearLaunch][] => {
  const c = dp4aConfigFor(N, K, 1); // at 1 row; wqkv and w2 take halves (split 2) at 8 rows
  return [
    ["weight-only (linear)", (r, io) => linear(r, io.x, int8(io), io.out, { accumulate: true })],
    [`LLM.int8 (model: R${c.R} L${c.LANES} U${c.U} at one row)`, llmInt8()],
    ...configs.map((c): [string, LinearLaunch] => [`LLM.int8 R${c.R} L${c.LANES} U${c.U}`, llmInt8(c)]),
    ["LLM.int8 rows passes alone", (r, io) => void llmInt8Rows(r, io.x, rowsScratch(io))],
  ];
};
const rows = await runLinearSweep({
  gpu,
  timer,
  copyGBps,
  label: "bench_matvec_dp4a",
  shapes: quick ? [{ name: "small", N: 301, K: 1100 }] : [
    { name: "wqkv", N: 8192, K: 6144 },
    { name: "wo", N: 6144, K: 6144 },
    { name: "w1", N: 16384, K: 6144 },
    { name: "w2", N: 6144, K: 16384 },
  ],
  tokens: [1, 2, 4, 8],
  candidates: (_T, shape) => candidates(shape.N, shape.K),
  extras: (_r, _x, s, T) => {
    const rows = createLlmInt8RowsScratch(gpu, `${s.name}.llm_int8${T}`, T, s.K);
    const prefixed = Object.fromEntries(Object.entries(rows).map(([k, t]) => [`r_${k}`, t]));
    return prefixed;
  },
  compare: true,
  quick,
  minMs,
});
await sweep.writeJson(outArg, "matvec_dp4a.json", {
  adapter: gpu.adapterDescription,
  copyGBps,
  rows,
});
gpu.destroy();
