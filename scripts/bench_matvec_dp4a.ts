// Experiment: the int8 linear for a few tokens as the model runs it (`linear`: exact, weights widened to f32)
// against int8 activations through dot4I8Packed (kernels/quantize_rows_i8.wgsl + kernels/matvec_dp4a.wgsl),
// at T = 1, 2, 4 and 8, beside the copy kernel — the issue's "dot4I8Packed matrix kernels with per-token int8
// activations" measurement.
//   deno run -A scripts/bench_matvec_dp4a.ts [--quick] [--ms 200] [--out matvec_dp4a.json]
// Plain linear only (each of gate/up's two matrices is timed as one 16384-row linear). Every candidate's
// output is compared with the model kernel's: for dp4a the normalised error is the activation rounding
// (random activations, no outliers), not a bug (tests/kernels/matvec_dp4a_test.ts checks the kernels
// exactly). The last candidate is the model's INT8_MATMUL=llm-int8 path: the rows passes with outlier
// columns (kernels/llm_int8_rows_scan.wgsl + llm_int8_rows_pack.wgsl) and the same matvec. Timing: the
// harness of src/bench/linear_sweep.ts (as scripts/bench_matvec.ts).
import { linear, type LinearWeights } from "../src/ops/linear.ts";
import {
  createLlmInt8RowsScratch,
  type Dp4aConfig,
  llmInt8Rows,
  type LlmInt8RowsScratch,
  matvecDp4a,
  matvecLlmInt8,
  quantizeRowsI8,
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

const configs: Dp4aConfig[] = [
  { R: 4, LANES: 32, U: 4 },
  { R: 4, LANES: 32, U: 2 },
  { R: 2, LANES: 32, U: 4 },
  { R: 1, LANES: 32, U: 4 },
  { R: 4, LANES: 16, U: 2 },
  { R: 4, LANES: 64, U: 2 },
  { R: 2, LANES: 64, U: 4 },
];
// The int8 form of x (io.extra.xq, io.extra.xs) is made once per shape and T, except by the last candidate,
// which times the quantization pass with the matvec.
const dp4a = (c: Dp4aConfig): LinearLaunch => (r, io) =>
  matvecDp4a(r, io.extra.xq, io.extra.xs, int8(io), io.out, io.extra.empty, { accumulate: true, config: c });
const rowsScratch = (io: LinearIo): LlmInt8RowsScratch => ({
  q: io.extra.r_q,
  xs: io.extra.r_xs,
  outliers: io.extra.r_outliers,
  values: io.extra.r_values,
  colbits: io.extra.r_colbits,
  partial: io.extra.r_partial,
  count: io.extra.r_count,
});
const int8 = (io: LinearIo): LinearWeights => ({ kind: "int8", weight: io.w, scale: io.scale, bias: null });
const candidates: [string, LinearLaunch][] = [
  [
    "model (linear)",
    (r, io) =>
      linear(r, io.x, { kind: "int8", weight: io.w, scale: io.scale, bias: null }, io.out, {
        accumulate: true,
      }),
  ],
  ...configs.map((c): [string, LinearLaunch] => [`dp4a R${c.R} L${c.LANES} U${c.U}`, dp4a(c)]),
  [
    "quantize + dp4a R4 L32 U4",
    (r, io) => {
      quantizeRowsI8(r, io.x, io.extra.xq, io.extra.xs);
      dp4a(configs[0])(r, io);
    },
  ],
  [
    "LLM.int8 rows + dp4a",
    (r, io) =>
      matvecLlmInt8(r, llmInt8Rows(r, io.x, rowsScratch(io)), int8(io), io.out, { accumulate: true }),
  ],
];
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
  candidates: () => candidates,
  extras: (r, x, s, T) => {
    const xq = gpu.createTensor(`${s.name}.xq${T}`, "u32", [T, s.K / 4]);
    const xs = gpu.createTensor(`${s.name}.xs${T}`, "f32", [T]);
    quantizeRowsI8(r, x, xq, xs);
    const empty = gpu.uploadTensor(`${s.name}.empty${T}`, "u32", [1 + s.K], new Uint32Array(1 + s.K));
    const rows = createLlmInt8RowsScratch(gpu, `${s.name}.llm_int8${T}`, T, s.K);
    const prefixed = Object.fromEntries(Object.entries(rows).map(([k, t]) => [`r_${k}`, t]));
    return { xq, xs, empty, ...prefixed };
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
