// The harness shared by the kernel sweep scripts (scripts/bench_attention*.ts, bench_gemm.ts,
// bench_matvec.ts): each times a list of candidate launches of one op against a reference launch on the
// same inputs. What lives here is the part whose method must not drift between scripts, so that their
// logs in bench/results/ stay comparable: the command line (--quick, --ms, --out), the adapter line, the
// timing of a candidate (one warm-up pass, then passes of D back-to-back dispatches, median per dispatch)
// and the error measures against the reference. Shapes, candidates, rows and tables stay in each script.
import { parseArgs as parseCommandLine, type ParseArgsOptionsConfig } from "node:util";
import { Gpu } from "../gpu/device.ts";
import { DispatchCache } from "../gpu/dispatch_cache.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { fillRandom } from "../ops/fill_random.ts";
import { GpuTimer, median, nsToMs } from "./gpu_timer.ts";

const commonOptions = {
  quick: { type: "boolean", default: false },
  // No default here: the default depends on --quick (see `parseArgs`).
  ms: { type: "string" },
  out: { type: "string" },
} as const;

/**
 * The sweep command line: `--quick` (small odd shapes, a smoke run on llvmpipe), `--ms` (GPU time to spend
 * per candidate; `quickMs` with --quick, 200 otherwise), `--out` (JSON path), plus the script's own
 * `extra` options. Unknown options are rejected (parseArgs strict mode).
 */
export function parseArgs<E extends ParseArgsOptionsConfig>(extra: E, quickMs = 200) {
  const { values } = parseCommandLine({ args: Deno.args, options: { ...commonOptions, ...extra } });
  // The generic result does not resolve inside this function; the common options' types are fixed.
  const common = values as unknown as { quick: boolean; ms?: string; out?: string };
  const quick = common.quick;
  return { args: values, quick, minMs: Number(common.ms ?? (quick ? quickMs : 200)), out: common.out };
}

/** Opens the GPU, installs the pass timer and prints the adapter line every sweep log starts with. */
export async function openGpu(): Promise<{ gpu: Gpu; timer: GpuTimer }> {
  const gpu = await Gpu.create();
  const timer = GpuTimer.install(gpu);
  console.log(
    `adapter: ${gpu.adapterDescription} (fallback ${gpu.isFallbackAdapter}), timing ${timer.method}`,
  );
  return { gpu, timer };
}

/** How far a candidate's output is from the reference's. */
export interface OutputError {
  /** Σ(a−b)²/Σb² (Σ(a−b)² when the reference is all zeros): the kernel tests' measure. */
  nerr: number;
  /** max|a−b| / max|b| (max|a−b| when the reference is all zeros): catches one bad element in many. */
  maxDiffOverMax: number;
}

/** Compares `got` (a) with `ref` (b, f32 or a wider CPU reference), element by element over got's length. */
export function compareOutputs(got: Float32Array, ref: ArrayLike<number>): OutputError {
  let num = 0, den = 0, maxDiff = 0, maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    const d = got[i] - ref[i];
    num += d * d;
    den += ref[i] ** 2;
    maxDiff = Math.max(maxDiff, Math.abs(d));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return { nerr: den > 0 ? num / den : num, maxDiffOverMax: maxRef > 0 ? maxDiff / maxRef : maxDiff };
}

/**
 * The error columns of a table row: `nerr 1.2e-13` (then `  max|Δ|/max|old| 3.4e-7` when
 * `maxDiffOverMax` is given) and `  MISMATCH` above `tolerance`.
 */
export function errorColumns(nerr: number, tolerance: number, maxDiffOverMax?: number): string {
  const max = maxDiffOverMax === undefined ? "" : `  max|Δ|/max|old| ${maxDiffOverMax.toExponential(1)}`;
  return `nerr ${nerr.toExponential(1)}${max}${nerr > tolerance ? "  MISMATCH" : ""}`;
}

/** Records one launch on its own and submits it: the correctness check before a candidate's timing. */
export function launchOnce(gpu: Gpu, label: string, record: (r: Recorder) => void): void {
  const r = gpu.recorder(label);
  record(r);
  r.submit();
}

/**
 * Fills attention inputs from `seed` on (q, k, v take seeds seed, seed+1, seed+2) and waits: q and k in
 * ±2 so the scores q·k·Dh^-0.5 are a few units, as in trained attention; v in fillRandom's default range.
 */
export async function fillAttentionInputs(
  gpu: Gpu,
  label: string,
  seed: number,
  q: Tensor,
  k: Tensor,
  v: Tensor,
) {
  const init = gpu.recorder(label);
  fillRandom(init, q, { seed, lo: -2, hi: 2 });
  fillRandom(init, k, { seed: seed + 1, lo: -2, hi: 2 });
  fillRandom(init, v, { seed: seed + 2 });
  init.submit();
  await gpu.sync("filling q, k, v");
}

/** A candidate that threw: one line, the first line of the error, and the sweep goes on. */
export function logFailure(where: string, e: unknown): void {
  console.log(`${where}: FAILED ${(e as Error).message.split("\n")[0]}`);
}

/** Clamps `x` into [lo, hi]. */
export function clamp(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, x));
}

/**
 * Passes of `dispatches` calls at `msPerDispatch` needed for `minMs` of GPU time, kept in [lo, hi]
 * (the timer stamps at most 2048 passes per collect).
 */
export function passesFor(minMs: number, dispatches: number, msPerDispatch: number, lo: number, hi: number) {
  return clamp(Math.ceil(minMs / (dispatches * msPerDispatch)), lo, hi);
}

/** Milliseconds per dispatch: the median pass and the fastest (equal under wall clock). */
export interface PassTiming {
  ms: number;
  msMin: number;
}

/**
 * Runs `passes` passes of `dispatches` dispatches each (`runPass(p)` records and submits pass p) and times
 * them: with timestamps, every pass on the GPU clock (median and minimum over passes); without, wall clock
 * over all passes (Deno notices GPU completion ~11 ms late, so one wait for the whole batch).
 * `checkStamped`: raise GPU errors right after collecting the stamps, under `label`.
 */
export async function timePasses(
  gpu: Gpu,
  timer: GpuTimer,
  label: string,
  runPass: (pass: number) => void,
  dispatches: number,
  passes: number,
  checkStamped: boolean,
): Promise<PassTiming> {
  if (timer.hasTimestamps) {
    timer.start(label);
    for (let p = 0; p < passes; p++) runPass(p);
    const per = (await timer.collect()).map((st) => nsToMs(st.endNs - st.beginNs) / dispatches);
    if (checkStamped) await gpu.check(label);
    return { ms: median(per), msMin: Math.min(...per) };
  }
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) runPass(p);
  await gpu.sync(label);
  const ms = (performance.now() - t0) / (passes * dispatches);
  return { ms, msMin: ms };
}

/**
 * A plan of `calls` dispatches a pass: 2 passes with --quick, else as many as `minMs` of GPU time needs
 * (calibrated on 3 passes), within 5…2000.
 */
export function callsPlan(calls: number, quick: boolean, minMs: number) {
  return async (calibrate: Calibrate): Promise<PassPlan> => {
    if (quick) return { dispatches: calls, passes: 2 };
    const once = await calibrate(calls, 3);
    return { dispatches: calls, passes: passesFor(minMs, calls, once.ms, 5, 2000) };
  };
}

/** Dispatches per pass and the number of timed passes. */
export interface PassPlan {
  dispatches: number;
  passes: number;
}

/** Times a few passes of `dispatches` dispatches: what a plan calibrates on. */
export type Calibrate = (dispatches: number, passes: number) => Promise<PassTiming>;

export interface CandidateTiming extends PassTiming, PassPlan {}

/**
 * Times one candidate: `launch(r, d, pass, dispatches)` records dispatch d of `dispatches` in pass `pass`
 * (so a script can rotate over weight or cache copies that L2 cannot hold). Every pass is one recorder and one
 * submit with a dispatch cache of its own, so bind groups are built once. One warm-up pass of
 * `warmupDispatches` (pipeline build, bind groups), then `plan` picks the passes (it may calibrate),
 * then the timed passes. `checkLabel`: a GPU error check after the timed passes.
 */
export async function timeCandidate(gpu: Gpu, timer: GpuTimer, opts: {
  name: string;
  cacheLabel: string;
  recorderLabel: string;
  launch: (r: Recorder, d: number, pass: number, dispatches: number) => void;
  warmupDispatches: number;
  plan: (calibrate: Calibrate) => PassPlan | Promise<PassPlan>;
  checkStamped: boolean;
  checkLabel?: string;
}): Promise<CandidateTiming> {
  const { name, launch } = opts;
  const cache = new DispatchCache(opts.cacheLabel);
  const runPass = (pass: number, dispatches: number) => {
    const r = gpu.recorder(opts.recorderLabel, cache);
    for (let d = 0; d < dispatches; d++) launch(r, d, pass, dispatches);
    r.submit();
  };
  const time = (dispatches: number, passes: number) =>
    timePasses(gpu, timer, name, (p) => runPass(p, dispatches), dispatches, passes, opts.checkStamped);
  runPass(0, opts.warmupDispatches);
  await gpu.sync(`warming up ${name}`);
  const { dispatches, passes } = await opts.plan(time);
  const t = await time(dispatches, passes);
  if (opts.checkLabel !== undefined) await gpu.check(opts.checkLabel);
  cache.destroy();
  return { ...t, dispatches, passes };
}

/**
 * Where the JSON goes: `--out`, else `$OUT/<fileName>` when OUT is set (the device runs), else nowhere.
 * `announce`: print `wrote <path>` after writing.
 */
export async function writeJson(
  out: string | undefined,
  fileName: string,
  body: unknown,
  announce = true,
) {
  const outDir = Deno.env.get("OUT");
  const outPath = out ?? (outDir ? `${outDir}/${fileName}` : null);
  if (!outPath) return;
  await Deno.writeTextFile(outPath, JSON.stringify(body, null, 1));
  if (announce) console.log(`wrote ${outPath}`);
}

/**
 * The attention sweeps' pass plan. --quick: two passes of one dispatch. Otherwise a calibration of three
 * single-dispatch passes, then D dispatches per pass for ≈ 20 ms passes (D ≤ 200) and passes for
 * ≥ `minMs` per candidate (5 to 2000).
 */
export function twentyMsPasses(quick: boolean, minMs: number) {
  return async (calibrate: Calibrate): Promise<PassPlan> => {
    if (quick) return { dispatches: 1, passes: 2 };
    const once = await calibrate(1, 3);
    const dispatches = clamp(Math.round(20 / once.ms), 1, 200);
    return { dispatches, passes: passesFor(minMs, dispatches, once.ms, 5, 2000) };
  };
}

/** The timing and error fields of an attention sweep row, in the JSON's key order. */
export interface FlopsTiming extends OutputError {
  kernel: string;
  ms: number;
  msMin: number;
  tflops: number;
  dispatchesPerPass: number;
  passes: number;
}

export function flopsTiming(
  kernel: string,
  t: CandidateTiming,
  flops: number,
  err: OutputError,
): FlopsTiming {
  return {
    kernel,
    ms: t.ms,
    msMin: t.msMin,
    tflops: flops / (t.ms * 1e9),
    dispatchesPerPass: t.dispatches,
    passes: t.passes,
    nerr: err.nerr,
    maxDiffOverMax: err.maxDiffOverMax,
  };
}

/** An attention sweep's table row after the shape: kernel name padded to `width`, timing, errors, passes. */
export function flopsTimingColumns(row: FlopsTiming, width: number): string {
  return `${row.kernel.padEnd(width)} ${row.ms.toFixed(3).padStart(9)} ms/call ` +
    `(min ${row.msMin.toFixed(3)})  ${row.tflops.toPrecision(3).padStart(6)} TFLOP/s  ` +
    `${errorColumns(row.nerr, 1e-10, row.maxDiffOverMax)}  [${row.passes}×${row.dispatchesPerPass}]`;
}

/**
 * The summary's view of one shape's rows: the reference row and the candidates within `tolerance` of
 * it, fastest first by `cost`.
 */
export function rankAgainst<R extends { kernel: string; nerr: number }>(
  rows: R[],
  reference: string,
  tolerance: number,
  cost: (r: R) => number,
): { base: R | undefined; ranked: R[] } {
  const base = rows.find((r) => r.kernel === reference);
  const ranked = rows.filter((r) => r.kernel !== reference && r.nerr <= tolerance)
    .sort((a, b) => cost(a) - cost(b));
  return { base, ranked };
}

/** Rows of an output compared with a baseline: the first and the last (partial tiles live there). */
export function sampleRows(M: number): [number, number][] {
  const head = Math.min(M, 512), tail = Math.max(head, M - 256);
  return tail < M ? [[0, head], [tail, M]] : [[0, head]];
}

/** Reads the given row ranges of `out` [M, N] f32, concatenated. */
export async function readRows(
  gpu: Gpu,
  out: Tensor,
  N: number,
  ranges: [number, number][],
): Promise<Float32Array> {
  const parts = await Promise.all(
    ranges.map(([a, b]) =>
      gpu.readBytes(out, (b - a) * N * 4, a * N * 4).then((buf) => new Float32Array(buf))
    ),
  );
  const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}
