// Experiment: a decode step's two LLM.int8 row groups (8 rows and 1–8 more, each quantized apart by the rows
// passes) multiplied in one pass of kernels/matvec_dp4a.wgsl (`pairRows`, a group a half) against their two
// calls one after the other (the model before PERF.md v78), at the InternLM2-20B products: wqkv, wo, gate·up
// (silu(gate)·up), w2. The rows passes run once, before the timing: both forms take the same int8 rows.
//   deno run -A scripts/bench_paired_rows.ts [--quick] [--ms 200] [--first 8] [--second 8] [--out F]
// --first, --second: rows of the two groups (1..8, second ≤ first). Timing: the sweep harness
// (src/bench/sweep.ts), a pass of 12 calls rotating over 4 copies of the weights (so that L2 cannot serve
// them), median µs a call. Every paired
// candidate's output is compared with the two calls' (the same integer sums; the outlier columns' f32 sums in
// another order).
import type { Recorder } from "../src/gpu/recorder.ts";
import { rowsView, type Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import type { LinearWeights } from "../src/ops/linear.ts";
import {
  createPairedRowsScratch,
  destroyPairedRowsScratch,
  type Dp4aConfig,
  llmInt8Rows,
  matvecLlmInt8,
  maxLlmInt8Rows,
  pairRows,
} from "../src/ops/matvec_dp4a.ts";
import * as sweep from "../src/bench/sweep.ts";

const { args, quick, minMs, out: outArg } = sweep.parseArgs({
  first: { type: "string", default: "8" },
  second: { type: "string", default: "8" },
});
const first = Number(args.first), second = Number(args.second);
if (!(Number.isInteger(first) && first >= 1 && first <= maxLlmInt8Rows)) {
  throw new Error(`--first ${args.first}: rows of the first group, 1..${maxLlmInt8Rows}`);
}
if (!(Number.isInteger(second) && second >= 1 && second <= first)) {
  throw new Error(`--second ${args.second}: rows of the second group, 1..${first}`);
}
const { gpu, timer } = await sweep.openGpu();

interface Shape {
  name: string;
  N: number;
  K: number;
  glu: boolean;
  configs: Dp4aConfig[]; // the paired candidates (halves implied)
}
const shapes: Shape[] = quick
  ? [
    {
      name: "small",
      N: 75,
      K: 576,
      glu: false,
      configs: [{ R: 1, LANES: 8, U: 4 }, { R: 2, LANES: 16, U: 2 }],
    },
    { name: "small gate·up", N: 41, K: 320, glu: true, configs: [{ R: 4, LANES: 8, U: 4 }] },
  ]
  : [
    {
      name: "wqkv",
      N: 8192,
      K: 6144,
      glu: false,
      configs: [{ R: 4, LANES: 16, U: 4 }, { R: 2, LANES: 16, U: 4 }],
    },
    {
      name: "wo",
      N: 6144,
      K: 6144,
      glu: false,
      configs: [{ R: 1, LANES: 8, U: 4 }, { R: 1, LANES: 16, U: 4 }],
    },
    {
      name: "gate·up",
      N: 16384,
      K: 6144,
      glu: true,
      configs: [{ R: 4, LANES: 8, U: 4 }, { R: 4, LANES: 8, U: 2 }, { R: 4, LANES: 16, U: 2 }],
    },
    {
      name: "w2",
      N: 6144,
      K: 16384,
      glu: false,
      configs: [{ R: 1, LANES: 8, U: 4, phases: 1 }, { R: 1, LANES: 16, U: 4, phases: 1 }],
    },
    {
      name: "LM head",
      N: 92553,
      K: 6144,
      glu: false,
      configs: [
        { R: 4, LANES: 16, U: 4 },
        { R: 4, LANES: 16, U: 2 },
        { R: 2, LANES: 16, U: 4 },
        { R: 4, LANES: 8, U: 4 },
      ],
    },
  ];
const copies = quick ? 1 : 4;
const callsPerPass = 12;

interface Row {
  shape: string;
  candidate: string;
  us: number;
  usMin: number;
  passes: number;
  nerr: number | null;
}
const rows: Row[] = [];
let seed = 1;
for (const s of shapes) {
  const { N, K } = s;
  const T = first + second;
  const tensors: Tensor[] = [];
  const filled = (label: string, dtype: "i8x4" | "f32", shape: number[], lo?: number, hi?: number) => {
    const t = gpu.createTensor(`${s.name}.${label}`, dtype, shape);
    tensors.push(t);
    const r = gpu.recorder("bench_paired_rows.fill");
    fillRandom(r, t, { seed: seed++, lo, hi });
    r.submit();
    return t;
  };
  const linear = (i: number): LinearWeights => ({
    kind: "int8",
    weight: filled(`w${i}`, "i8x4", [N, K]),
    scale: filled(`s${i}`, "f32", [N], 0.001, 0.002),
    bias: null,
  });
  const ws = Array.from(
    { length: copies },
    (_, i) => ({ w: linear(2 * i), up: s.glu ? linear(2 * i + 1) : undefined }),
  );
  // Activations in ±2 with a few columns of each group past the threshold (its own outlier columns).
  const x = filled("x", "f32", [T, K], -2, 2);
  const host = await gpu.readF32(x);
  for (let j = 0; j < 24; j++) host[(j % T) * K + ((37 * j + 5) % K)] = j % 2 ? -9 : 8;
  gpu.writeTensor(x, host);
  const joint = createPairedRowsScratch(gpu, `${s.name}.pair`, K);
  const r = gpu.recorder("bench_paired_rows.rows");
  const groups = [0, 1].map((g) =>
    llmInt8Rows(r, rowsView(x, g * first, g ? second : first), joint.groups[g])
  );
  r.submit();
  const paired = pairRows(groups[0], groups[1], joint, x);
  const outs = [0, 1].map((g) => gpu.createTensor(`${s.name}.out${g}`, "f32", [groups[g].rows, N]));
  const out = gpu.createTensor(`${s.name}.out`, "f32", [T, N]);
  tensors.push(...outs, out);

  const candidates: [string, (r: Recorder, copy: number) => void, boolean][] = [
    ["two calls (model's 8-row tilings)", (r, i) => {
      groups.forEach((g, k) => matvecLlmInt8(r, g, ws[i].w, outs[k], { up: ws[i].up }));
    }, false],
    ...s.configs.map((c): [string, (r: Recorder, copy: number) => void, boolean] => [
      `paired R${c.R} L${c.LANES} U${c.U}${c.phases ? ` PH${c.phases}` : ""}`,
      (r, i) => matvecLlmInt8(r, paired, ws[i].w, out, { up: ws[i].up, config: c }),
      true,
    ]),
  ];
  let ref: Float32Array | null = null;
  for (const [name, launch, isPaired] of candidates) {
    try {
      sweep.launchOnce(gpu, `bench_paired_rows.check ${name}`, (rec) => launch(rec, 0));
      let nerr: number | null = null;
      // The reference: the two calls' outputs with weight copy 0, read before their timing rotates copies.
      if (!isPaired) ref = new Float32Array([...await gpu.readF32(outs[0]), ...await gpu.readF32(outs[1])]);
      else if (ref) nerr = sweep.compareOutputs(await gpu.readF32(out), ref).nerr;
      const t = await sweep.timeCandidate(gpu, timer, {
        name,
        cacheLabel: `bench_paired_rows.${s.name}.${name}`,
        recorderLabel: `bench_paired_rows ${name}`,
        launch: (rec, d) => launch(rec, d % copies),
        warmupDispatches: callsPerPass,
        plan: sweep.callsPlan(callsPerPass, quick, minMs),
        checkStamped: true,
      });
      const row: Row = {
        shape: s.name,
        candidate: name,
        us: t.ms * 1e3,
        usMin: t.msMin * 1e3,
        passes: t.passes,
        nerr,
      };
      rows.push(row);
      const err = nerr === null ? "" : `  ${sweep.errorColumns(nerr, 1e-10)}`;
      console.log(
        `${s.name} ${first} + ${second} rows, ${name}: ${row.us.toFixed(1)} µs a call (min ${
          row.usMin.toFixed(1)
        })${err}`,
      );
    } catch (e) {
      sweep.logFailure(`${s.name} ${name}`, e);
    }
  }
  for (const t of tensors) t.buffer.destroy();
  destroyPairedRowsScratch(joint);
}
await sweep.writeJson(outArg, "paired_rows.json", { adapter: gpu.adapterDescription, first, second, rows });
gpu.destroy();
