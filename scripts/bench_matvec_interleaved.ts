// Experiment: the int8 matrix-vector kernels on the decode shapes with the weights row-major (what the model
// runs: `linear`, which picks linear_matvec or matvec_i8) against the interleaved layout of
// kernels/matvec_interleaved.wgsl (one broadcast x load per warp), at T = 1, 4 and 8, beside the copy kernel.
//   deno run -A scripts/bench_matvec_interleaved.ts [--quick] [--ms 200] [--out matvec_interleaved.json]
// Plain linear only (no RMSNorm, no gate/up fusion: the gate/up pair is timed as one 32768-row linear of the
// same bytes). Weights are random in both layouts (speed does not depend on the values); the kernel's
// correctness is tests/kernels/matvec_interleaved_test.ts. Timing as scripts/bench_matvec.ts: passes of D
// back-to-back dispatches rotating over > 150 MB of weight copies, GPU timestamps, median.
import type { Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { linear } from "../src/ops/linear.ts";
import { matvecInterleaved } from "../src/ops/matvec_interleaved.ts";
import { measureCopyBandwidth } from "../src/bench/copy_bandwidth.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out: outArg } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();
const copy = await measureCopyBandwidth(gpu, timer, quick ? 1 << 22 : 1 << 30, {
  dispatchesPerPass: quick ? 2 : 20,
  passes: quick ? 2 : 10,
});
console.log(`copy kernel: ${copy.GBps.toFixed(0)} GB/s (${copy.bytes} bytes, ${copy.method})`);

const shapes = quick ? [{ name: "small", N: 301, K: 272 }] : [
  { name: "wqkv", N: 8192, K: 6144 },
  { name: "wo", N: 6144, K: 6144 },
  { name: "gate+up", N: 32768, K: 6144 },
  { name: "w2", N: 6144, K: 16384 },
];
type Launch = (r: Recorder, w: Tensor, scale: Tensor, x: Tensor, out: Tensor) => void;
const candidates: [string, Launch][] = [
  [
    "row-major (model)",
    (r, w, scale, x, out) =>
      linear(r, x, { kind: "int8", weight: w, scale, bias: null }, out, { accumulate: true }),
  ],
  [
    "interleaved R1",
    (r, w, scale, x, out) => matvecInterleaved(r, x, w, scale, out, { accumulate: true, rowsPerLane: 1 }),
  ],
  [
    "interleaved R2",
    (r, w, scale, x, out) => matvecInterleaved(r, x, w, scale, out, { accumulate: true, rowsPerLane: 2 }),
  ],
];

const rows: { shape: string; T: number; kernel: string; us: number; GBps: number; fraction: number }[] = [];
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
  for (const T of [1, 4, 8]) {
    const x = gpu.createTensor(`${s.name}.x${T}`, "f32", [T, K]);
    const out = gpu.createTensor(`${s.name}.out${T}`, "f32", [T, N]);
    const init = gpu.recorder("init");
    fillRandom(init, x, { seed: seed++ });
    init.submit();
    const bytes = N * K + N * 4 + T * K * 4 + 2 * T * N * 4;
    const estMs = bytes / 2.5e9 * (T > 1 ? 2 : 1);
    const D = quick ? 2 : sweep.clamp(Math.ceil(4 / estMs), 1, 400);
    const passes = quick ? 2 : sweep.passesFor(minMs, D, estMs, 8, 1000);
    for (const [name, launch] of candidates) {
      try {
        const t = await sweep.timeCandidate(gpu, timer, {
          name,
          cacheLabel: `bench_matvec_interleaved.${name}`,
          recorderLabel: `bench_matvec_interleaved ${s.name} T${T} ${name}`,
          launch: (r, d, p) => {
            const set = sets[(p * D + d) % copies];
            launch(r, set.w, set.scale, x, out);
          },
          warmupDispatches: D,
          plan: () => ({ dispatches: D, passes }),
          checkStamped: false,
          checkLabel: `${s.name} T${T} ${name}`,
        });
        const GBps = bytes / (t.ms * 1e6);
        rows.push({ shape: s.name, T, kernel: name, us: t.ms * 1e3, GBps, fraction: GBps / copy.GBps });
        console.log(
          `${s.name.padEnd(8)} N=${N} K=${K} T=${T}  ${name.padEnd(18)} ${
            (t.ms * 1e3).toFixed(1).padStart(8)
          } µs ` +
            `${GBps.toFixed(0).padStart(5)} GB/s ${
              (100 * GBps / copy.GBps).toFixed(1).padStart(5)
            } % of copy`,
        );
      } catch (e) {
        sweep.logFailure(`${s.name} T=${T} ${name}`, e);
      }
    }
    for (const t of [x, out]) t.buffer.destroy();
  }
  for (const st of sets) for (const t of [st.w, st.scale]) t.buffer.destroy();
}
await sweep.writeJson(outArg, "matvec_interleaved.json", {
  adapter: gpu.adapterDescription,
  copyGBps: copy.GBps,
  rows,
});
gpu.destroy();
