// Experiment: the int8 linear for a few tokens as the model runs it (`linear`: exact, weights widened to f32)
// against int8 activations through dot4I8Packed (kernels/quantize_rows_i8.wgsl + kernels/matvec_dp4a.wgsl),
// at T = 1, 2, 4 and 8, beside the copy kernel — the issue's "dot4I8Packed matrix kernels with per-token int8
// activations" measurement.
//   deno run -A scripts/bench_matvec_dp4a.ts [--quick] [--ms 200] [--out matvec_dp4a.json]
// Plain linear only (each of gate/up's two matrices is timed as one 16384-row linear). Every candidate's
// output is compared with the model kernel's: for dp4a the normalised error is the activation rounding
// (random activations, no outliers), not a bug (tests/kernels/matvec_dp4a_test.ts checks the kernels
// exactly). Timing as scripts/bench_matvec.ts: passes of D back-to-back dispatches rotating over > 150 MB
// of weight copies, GPU timestamps, median.
import type { Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { linear } from "../src/ops/linear.ts";
import { type Dp4aConfig, matvecDp4a, quantizeRowsI8 } from "../src/ops/matvec_dp4a.ts";
import { measureCopyBandwidth } from "../src/bench/copy_bandwidth.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out: outArg } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();
const copy = await measureCopyBandwidth(gpu, timer, quick ? 1 << 22 : 1 << 30, {
  dispatchesPerPass: quick ? 2 : 20,
  passes: quick ? 2 : 10,
});
console.log(`copy kernel: ${copy.GBps.toFixed(0)} GB/s (${copy.bytes} bytes, ${copy.method})`);

const shapes = quick ? [{ name: "small", N: 301, K: 1100 }] : [
  { name: "wqkv", N: 8192, K: 6144 },
  { name: "wo", N: 6144, K: 6144 },
  { name: "w1", N: 16384, K: 6144 },
  { name: "w2", N: 6144, K: 16384 },
];
/** A launch: x [T, K] f32 in, xq/xs its int8 form (filled once before timing, unless the launch quantizes). */
type Launch = (r: Recorder, w: Tensor, scale: Tensor, x: Tensor, xq: Tensor, xs: Tensor, out: Tensor) => void;
const configs: Dp4aConfig[] = [
  { R: 4, LANES: 32, U: 4 },
  { R: 4, LANES: 32, U: 2 },
  { R: 2, LANES: 32, U: 4 },
  { R: 1, LANES: 32, U: 4 },
  { R: 4, LANES: 16, U: 2 },
  { R: 4, LANES: 64, U: 2 },
  { R: 2, LANES: 64, U: 4 },
];
const name = (c: Dp4aConfig) => `dp4a R${c.R} L${c.LANES} U${c.U}`;
const candidates: [string, Launch][] = [
  [
    "model (linear)",
    (r, w, scale, x, _xq, _xs, out) =>
      linear(r, x, { kind: "int8", weight: w, scale, bias: null }, out, { accumulate: true }),
  ],
  ...configs.map((c): [string, Launch] => [
    name(c),
    (r, w, scale, _x, xq, xs, out) => matvecDp4a(r, xq, xs, w, scale, out, { accumulate: true, config: c }),
  ]),
  [
    "quantize + dp4a R4 L32 U4",
    (r, w, scale, x, xq, xs, out) => {
      quantizeRowsI8(r, x, xq, xs);
      matvecDp4a(r, xq, xs, w, scale, out, { accumulate: true, config: configs[0] });
    },
  ],
];

const rows: {
  shape: string;
  T: number;
  kernel: string;
  us: number;
  GBps: number;
  fraction: number;
  nerr: number;
}[] = [];
let seed = 1;
for (const s of shapes) {
  const { N, K } = s;
  const copies = quick ? 2 : Math.max(1, Math.ceil(150e6 / (N * K)));
  const fill = gpu.recorder("fill");
  const sets = Array.from({ length: copies }, (_, i) => {
    const w = gpu.createTensor(`${s.name}.${i}.w`, "i8x4", [N, K]);
    const scale = gpu.createTensor(`${s.name}.${i}.scale`, "f32", [N]);
    fillRandom(fill, w, { seed: seed++ });
    fillRandom(fill, scale, { seed: seed++, lo: 0.0002, hi: 0.002 });
    return { w, scale };
  });
  fill.submit();
  await gpu.sync(`filling ${s.name}`);
  for (const T of [1, 2, 4, 8]) {
    const x = gpu.createTensor(`${s.name}.x${T}`, "f32", [T, K]);
    const out = gpu.createTensor(`${s.name}.out${T}`, "f32", [T, N]);
    const ref = gpu.createTensor(`${s.name}.ref${T}`, "f32", [T, N]);
    const xq = gpu.createTensor(`${s.name}.xq${T}`, "u32", [T, K / 4]);
    const xs = gpu.createTensor(`${s.name}.xs${T}`, "f32", [T]);
    const init = gpu.recorder("init");
    fillRandom(init, x, { seed: seed++ });
    quantizeRowsI8(init, x, xq, xs);
    init.submit();
    const bytes = N * K + N * 4 + T * K * 4 + 2 * T * N * 4;
    const estMs = bytes / 2.5e9 * (T > 1 ? 2 : 1);
    const D = quick ? 2 : sweep.clamp(Math.ceil(4 / estMs), 1, 400);
    const passes = quick ? 2 : sweep.passesFor(minMs, D, estMs, 8, 1000);
    let refData: Float32Array | null = null;
    for (const [name, launch] of candidates) {
      try {
        // Output check: one launch into a zeroed output, compared with the model kernel's.
        const first = refData === null;
        const target = first ? ref : out;
        gpu.writeTensor(target, new Float32Array(T * N));
        const chk = gpu.recorder("check");
        launch(chk, sets[0].w, sets[0].scale, x, xq, xs, target);
        chk.submit();
        const got = await gpu.readF32(target);
        if (first) refData = got;
        const { nerr } = sweep.compareOutputs(got, refData!);
        const t = await sweep.timeCandidate(gpu, timer, {
          name,
          cacheLabel: `bench_matvec_dp4a.${name}`,
          recorderLabel: `bench_matvec_dp4a ${s.name} T${T} ${name}`,
          launch: (r, d, p) => {
            const set = sets[(p * D + d) % copies];
            launch(r, set.w, set.scale, x, xq, xs, out);
          },
          warmupDispatches: D,
          plan: () => ({ dispatches: D, passes }),
          checkStamped: false,
          checkLabel: `${s.name} T${T} ${name}`,
        });
        const GBps = bytes / (t.ms * 1e6);
        rows.push({ shape: s.name, T, kernel: name, us: t.ms * 1e3, GBps, fraction: GBps / copy.GBps, nerr });
        console.log(
          `${s.name.padEnd(8)} N=${N} K=${K} T=${T}  ${name.padEnd(18)} ${
            (t.ms * 1e3).toFixed(1).padStart(8)
          } µs ` +
            `${GBps.toFixed(0).padStart(5)} GB/s ${
              (100 * GBps / copy.GBps).toFixed(1).padStart(5)
            } % of copy  nerr ${nerr.toExponential(1)}`,
        );
      } catch (e) {
        sweep.logFailure(`${s.name} T=${T} ${name}`, e);
      }
    }
    for (const t of [x, out, ref, xq, xs]) t.buffer.destroy();
  }
  for (const st of sets) for (const t of [st.w, st.scale]) t.buffer.destroy();
}
await sweep.writeJson(outArg, "matvec_dp4a.json", {
  adapter: gpu.adapterDescription,
  copyGBps: copy.GBps,
  rows,
});
gpu.destroy();
