// The harness of the plain-linear experiment sweeps (scripts/bench_matvec_interleaved.ts,
// scripts/bench_matvec_dp4a.ts): candidate launches of out (+)= x·Wᵀ·scale on decode shapes at a few token
// counts, each timed the way scripts/bench_matvec.ts times (src/bench/sweep.ts: passes of D back-to-back
// dispatches rotating over > 150 MB of random int8 weight copies, GPU timestamps, median) beside the copy
// kernel of the same run, and optionally checked against the first candidate's output.
import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { fillRandom } from "../ops/fill_random.ts";
import { measureCopyBandwidth } from "./copy_bandwidth.ts";
import type { GpuTimer } from "./gpu_timer.ts";
import * as sweep from "./sweep.ts";

/** The bandwidth reference of a matvec sweep: the WGSL copy kernel over 1 GiB (4 MiB with --quick), printed. */
export async function copyReference(gpu: Gpu, timer: GpuTimer, quick: boolean): Promise<number> {
  const copy = await measureCopyBandwidth(gpu, timer, quick ? 1 << 22 : 1 << 30, {
    dispatchesPerPass: quick ? 2 : 20,
    passes: quick ? 2 : 10,
  });
  console.log(`copy kernel: ${copy.GBps.toFixed(0)} GB/s (${copy.bytes} bytes, ${copy.method})`);
  return copy.GBps;
}

/** One printed line of a matvec sweep: shape, candidate, µs per call, GB/s and its share of the copy rate. */
export function rateLine(
  shape: LinearShape,
  T: number,
  name: string,
  us: number,
  GBps: number,
  copyGBps: number,
) {
  return `${shape.name.padEnd(8)} N=${shape.N} K=${shape.K} T=${T}  ${name.padEnd(18)} ${
    us.toFixed(1).padStart(8)
  } µs ${GBps.toFixed(0).padStart(5)} GB/s ${(100 * GBps / copyGBps).toFixed(1).padStart(5)} % of copy`;
}

export interface LinearShape {
  name: string;
  N: number;
  K: number;
}

/** What a candidate launch gets: one weight copy, x [T, K], out [T, N] and the sweep's per-T extras. */
export interface LinearIo {
  w: Tensor; // [N, K] i8x4
  scale: Tensor; // [N] f32
  x: Tensor; // [T, K] f32
  out: Tensor; // [T, N] f32, accumulated into while timing
  extra: Record<string, Tensor>;
}

export type LinearLaunch = (r: Recorder, io: LinearIo) => void;

export interface LinearSweepRow {
  shape: string;
  T: number;
  kernel: string;
  us: number;
  GBps: number;
  fraction: number;
  /** Σ(a−b)²/Σb² against the first candidate (null when outputs are not compared). */
  nerr: number | null;
}

export interface LinearSweepOptions {
  gpu: Gpu;
  timer: GpuTimer;
  copyGBps: number;
  label: string; // the script's name, for recorder and cache labels
  shapes: LinearShape[];
  tokens: number[];
  candidates: (T: number, shape: LinearShape) => [string, LinearLaunch][];
  /** Tensors derived from x once per shape and T (recorded after x is filled); destroyed afterwards. */
  extras?: (r: Recorder, x: Tensor, shape: LinearShape, T: number) => Record<string, Tensor>;
  /** Compare each candidate's output (one launch into a zeroed out) with the first candidate's. */
  compare: boolean;
  quick: boolean;
  minMs: number;
}

/** Runs the sweep, printing one line per candidate, and returns the rows. */
export async function runLinearSweep(o: LinearSweepOptions): Promise<LinearSweepRow[]> {
  const { gpu, timer, quick } = o;
  const rows: LinearSweepRow[] = [];
  let seed = 1;
  for (const s of o.shapes) {
    const { N, K } = s;
    const copies = quick ? 2 : Math.max(1, Math.ceil(150e6 / (N * K)));
    const fill = gpu.recorder(`${o.label}.fill`);
    const sets = Array.from({ length: copies }, (_, i) => {
      const w = gpu.createTensor(`${s.name}.${i}.w`, "i8x4", [N, K]);
      const scale = gpu.createTensor(`${s.name}.${i}.scale`, "f32", [N]);
      fillRandom(fill, w, { seed: seed++ });
      fillRandom(fill, scale, { seed: seed++, lo: 0.0002, hi: 0.002 });
      return { w, scale };
    });
    fill.submit();
    await gpu.sync(`filling ${s.name}`);
    for (const T of o.tokens) {
      const x = gpu.createTensor(`${s.name}.x${T}`, "f32", [T, K]);
      const out = gpu.createTensor(`${s.name}.out${T}`, "f32", [T, N]);
      const ref = gpu.createTensor(`${s.name}.ref${T}`, "f32", [T, N]);
      const init = gpu.recorder(`${o.label}.init`);
      fillRandom(init, x, { seed: seed++ });
      const extra = o.extras?.(init, x, s, T) ?? {};
      init.submit();
      // Minimum traffic: weights + scales once, x once, out read and written.
      const bytes = N * K + N * 4 + T * K * 4 + 2 * T * N * 4;
      const estMs = bytes / 2.5e9 * (T > 1 ? 2 : 1);
      const D = quick ? 2 : sweep.clamp(Math.ceil(4 / estMs), 1, 400);
      const passes = quick ? 2 : sweep.passesFor(o.minMs, D, estMs, 8, 1000);
      let refData: Float32Array | null = null;
      for (const [name, launch] of o.candidates(T, s)) {
        try {
          let nerr: number | null = null;
          if (o.compare) {
            const first = refData === null;
            const target = first ? ref : out;
            gpu.writeTensor(target, new Float32Array(T * N));
            const chk = gpu.recorder("check");
            launch(chk, { ...sets[0], x, out: target, extra });
            chk.submit();
            const got = await gpu.readF32(target);
            if (first) refData = got;
            nerr = sweep.compareOutputs(got, refData!).nerr;
          }
          const t = await sweep.timeCandidate(gpu, timer, {
            name,
            cacheLabel: `${o.label}.${name}`,
            recorderLabel: `${o.label} ${s.name} T${T} ${name}`,
            launch: (r, d, p) => launch(r, { ...sets[(p * D + d) % copies], x, out, extra }),
            warmupDispatches: D,
            plan: () => ({ dispatches: D, passes }),
            checkStamped: false,
            checkLabel: `${s.name} T${T} ${name}`,
          });
          const GBps = bytes / (t.ms * 1e6);
          const row = {
            shape: s.name,
            T,
            kernel: name,
            us: t.ms * 1e3,
            GBps,
            fraction: GBps / o.copyGBps,
            nerr,
          };
          rows.push(row);
          console.log(
            rateLine(s, T, name, row.us, GBps, o.copyGBps) +
              (nerr === null ? "" : `  nerr ${nerr.toExponential(1)}`),
          );
        } catch (e) {
          sweep.logFailure(`${s.name} T=${T} ${name}`, e);
        }
      }
      for (const t of [x, out, ref, ...Object.values(extra)]) t.buffer.destroy();
    }
    for (const st of sets) for (const t of [st.w, st.scale]) t.buffer.destroy();
  }
  return rows;
}
