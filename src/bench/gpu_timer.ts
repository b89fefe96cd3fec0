// GPU timing for the benchmark. Deno reports GPU completion ~11 ms late (a 10 ms poll; shared/GPU_HOST.md),
// so "submit, await onSubmittedWorkDone" cannot time a 5 ms decode step. With `timestamp-query` we stamp the
// beginning and end of every compute pass on the GPU's own clock; without it we fall back to wall clock over
// enough back-to-back repetitions that the poll delay is a small fraction of the total.
//
// The Recorder (src/gpu/recorder.ts) opens exactly one compute pass per submit and takes no timestamp
// options, so the timer instruments the device instead of editing it: while installed, every
// `createCommandEncoder()` returns an encoder whose `beginComputePass()` adds `timestampWrites` for the
// next free query pair when the timer is recording, and whose passes count their dispatches. Bench only.
import type { Gpu } from "../gpu/device.ts";

export type TimingMethod = "timestamp-query" | "wall-clock";

/** One compute pass as the GPU saw it: nanoseconds on the GPU clock (timestamp-query only). */
export interface PassStamp {
  label: string;
  /** The pass's own label (its GPUComputePassDescriptor's), "" without one. */
  pass: string;
  beginNs: number;
  endNs: number;
}

/** WebGPU caps a query set at 4096 queries: 2048 passes per `collect()`. */
const maxQueries = 4096;

export class GpuTimer {
  readonly method: TimingMethod;
  /** Counters since install (or the last `resetCounts`); cheap enough to keep on. */
  submits = 0;
  passes = 0;
  dispatches = 0;
  /** Passes that ran unstamped because the query set was full (since the last `start()`). */
  dropped = 0;

  private querySet: GPUQuerySet | null = null;
  private resolveBuffer: GPUBuffer | null = null;
  private readBuffer: GPUBuffer | null = null;
  /**
   * Per stamped pass, in query order: the timer's label, the pass's own, and whether its command buffer was
   * submitted (generate() encodes a step ahead).
   */
  private stamped: { label: string; pass: string; submitted: boolean }[] = [];
  /** The stamped passes' indices of each finished command buffer, and the collect cycle they belong to. */
  private readonly slotsOf = new WeakMap<GPUCommandBuffer, { cycle: number; slots: number[] }>();
  /** Bumped whenever the stamped passes are forgotten (collect, abandon): older indices mean nothing. */
  private cycle = 0;
  private recording = false;
  private nextLabel = "pass";
  /** The uninstrumented queue.submit and createCommandEncoder: the timer's own work is not counted. */
  private rawSubmit: (buffers: Iterable<GPUCommandBuffer>) => void = () => {};
  private rawEncoder: (desc?: GPUCommandEncoderDescriptor) => GPUCommandEncoder = () => {
    throw new Error("GpuTimer: not instrumented");
  };

  private constructor(readonly gpu: Gpu, useTimestamps: boolean) {
    this.method = useTimestamps ? "timestamp-query" : "wall-clock";
    const device = gpu.device;
    if (useTimestamps) {
      this.querySet = device.createQuerySet({
        label: "bench.timestamps",
        type: "timestamp",
        count: maxQueries,
      });
      this.resolveBuffer = device.createBuffer({
        label: "bench.timestamps.resolve",
        size: maxQueries * 8,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      this.readBuffer = device.createBuffer({
        label: "bench.timestamps.read",
        size: maxQueries * 8,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
    }
    this.instrument(device);
  }

  /**
   * Instruments `gpu.device` (once per Gpu). `forceWallClock` exercises the fallback on an adapter that
   * has timestamps (tests, or `--timing wall`).
   */
  static install(gpu: Gpu, forceWallClock = false): GpuTimer {
    const existing = installed.get(gpu);
    if (existing) {
      if (existing.method === "timestamp-query" && forceWallClock) {
        throw new Error("GpuTimer already installed with timestamps on this device");
      }
      return existing;
    }
    const t = new GpuTimer(gpu, gpu.hasTimestamps && !forceWallClock);
    installed.set(gpu, t);
    return t;
  }

  get hasTimestamps(): boolean {
    return this.querySet !== null;
  }

  /** Starts stamping passes; `label` names the passes that follow until the next `label()`. */
  start(label = "pass"): void {
    this.recording = true;
    this.nextLabel = label;
    this.dropped = 0;
  }

  /** Forgets passes stamped but never collected (a section that threw mid-measurement). */
  abandon(): void {
    this.recording = false;
    this.forget();
  }

  /** Drops the stamped passes; their query indices mean nothing from the next cycle on. */
  private forget(): void {
    this.stamped = [];
    this.cycle++;
  }

  label(label: string): void {
    this.nextLabel = label;
  }

  /** Passes stamped since the last `collect()` (each uses two queries). */
  get pending(): number {
    return this.stamped.length;
  }

  /**
   * Stops stamping, waits for the GPU and returns every stamped pass that was submitted, in the order the
   * passes were encoded. Without timestamp-query it returns [] (callers use wall clock instead).
   */
  async collect(): Promise<PassStamp[]> {
    this.recording = false;
    const n = this.stamped.length;
    if (!this.querySet || n === 0) {
      this.forget();
      return [];
    }
    const enc = this.rawEncoder({ label: "bench.timestamps.resolve" });
    // A pass encoded but never submitted (a generation that paused leaves its next step so) never wrote its
    // queries; resolving queries never written is not defined on Vulkan, and a join run with one never
    // returned on an H100 (PERF.md v46). An empty pass writes them first; those stamps are dropped.
    for (let i = 0; i < n; i++) {
      if (this.stamped[i].submitted) continue;
      enc.beginComputePass({
        label: "bench.timestamps.unsubmitted",
        timestampWrites: {
          querySet: this.querySet,
          beginningOfPassWriteIndex: 2 * i,
          endOfPassWriteIndex: 2 * i + 1,
        },
      }).end();
    }
    enc.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuffer!, 0);
    enc.copyBufferToBuffer(this.resolveBuffer!, 0, this.readBuffer!, 0, 2 * n * 8);
    this.rawSubmit([enc.finish()]);
    await this.readBuffer!.mapAsync(GPUMapMode.READ, 0, 2 * n * 8);
    const ticks = new BigUint64Array(this.readBuffer!.getMappedRange(0, 2 * n * 8).slice(0));
    this.readBuffer!.unmap();
    await this.gpu.check("reading GPU timestamps");
    const out = this.stamped.map(({ label, pass }, i) => ({
      label,
      pass,
      beginNs: Number(ticks[2 * i]),
      endNs: Number(ticks[2 * i + 1]),
    })).filter((_, i) => this.stamped[i].submitted);
    this.forget();
    return out;
  }

  resetCounts(): void {
    this.submits =
      this.passes =
      this.dispatches =
      this.dropped =
        0;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
    this.readBuffer?.destroy();
  }

  private instrument(device: GPUDevice): void {
    // deno-lint-ignore no-this-alias
    const timer = this;
    const createEncoder = device.createCommandEncoder.bind(device);
    this.rawEncoder = createEncoder;
    device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor) => {
      const enc = createEncoder(desc);
      // This encoder's stamped passes, and the cycle they were stamped in.
      const slots: number[] = [];
      let cycle = timer.cycle;
      const finish = enc.finish.bind(enc);
      enc.finish = (d?: GPUCommandBufferDescriptor) => {
        const buffer = finish(d);
        if (slots.length > 0) timer.slotsOf.set(buffer, { cycle, slots });
        return buffer;
      };
      const beginPass = enc.beginComputePass.bind(enc);
      enc.beginComputePass = (passDesc?: GPUComputePassDescriptor) => {
        timer.passes++;
        let d = passDesc;
        if (timer.recording && timer.querySet && !passDesc?.timestampWrites) {
          const i = timer.stamped.length;
          if (2 * i + 2 <= maxQueries) {
            if (slots.length === 0) cycle = timer.cycle;
            slots.push(i);
            timer.stamped.push({ label: timer.nextLabel, pass: passDesc?.label ?? "", submitted: false });
            d = {
              ...passDesc,
              timestampWrites: {
                querySet: timer.querySet,
                beginningOfPassWriteIndex: 2 * i,
                endOfPassWriteIndex: 2 * i + 1,
              },
            };
          } else timer.dropped++;
        }
        const pass = beginPass(d);
        const dispatch = pass.dispatchWorkgroups.bind(pass);
        pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => {
          timer.dispatches++;
          dispatch(x, y, z);
        };
        return pass;
      };
      return enc;
    };
    const queue = device.queue;
    const submit = queue.submit.bind(queue);
    this.rawSubmit = submit;
    queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
      timer.submits++;
      const list = [...buffers];
      for (const b of list) {
        const own = timer.slotsOf.get(b);
        if (!own || own.cycle !== timer.cycle) continue;
        for (const i of own.slots) timer.stamped[i].submitted = true;
      }
      submit(list);
    };
  }
}

const installed = new WeakMap<Gpu, GpuTimer>();

/** Milliseconds between two GPU timestamps. */
export function nsToMs(ns: number): number {
  return ns / 1e6;
}

/** Σ of the passes' durations: the GPU busy with them, ms. */
export function busyMsOf(passes: readonly PassStamp[]): number {
  return passes.reduce((s, p) => s + nsToMs(p.endNs - p.beginNs), 0);
}

/** A step's stamp: one pass, or a pass labelled `….first` joined with the pass after it. */
export interface JoinedStamp extends PassStamp {
  /** Whether the step ran as two passes (a first part submitted ahead of the rest). */
  split: boolean;
  /** The GPU idle between a split step's two passes, ms (0 for one pass). */
  innerIdleMs: number;
}

/**
 * Joins each pass whose own label ends in ".first" (Recorder.encode's firstPart) with the pass after it: one
 * step from the first's beginning to the second's end, the time between them its own idle time.
 */
export function joinSplitPasses(passes: PassStamp[]): JoinedStamp[] {
  const out: JoinedStamp[] = [];
  passes.forEach((p, i) => {
    if (p.pass.endsWith(".first") && i + 1 < passes.length) return;
    const first = i > 0 && passes[i - 1].pass.endsWith(".first") ? passes[i - 1] : null;
    out.push(
      first
        ? { ...p, beginNs: first.beginNs, split: true, innerIdleMs: nsToMs(p.beginNs - first.endNs) }
        : { ...p, split: false, innerIdleMs: 0 },
    );
  });
  return out;
}

export interface StepTimes {
  /** Per repetition: first pass begin → last pass end, ms. */
  spanMs: number[];
  /** Per repetition: Σ pass durations (the GPU actually executing this repetition's passes), ms. */
  busyMs: number[];
  /** Between repetitions: last pass end of one → first pass begin of the next, ms (GPU idle). */
  gapMs: number[];
  /** First begin of the first repetition → last end of the last, ms, divided by the repetitions. */
  throughputMs: number;
}

/** Groups stamped passes into repetitions; `starts[i]` is the index of repetition i's first pass. */
export function stepTimes(stamps: PassStamp[], starts: number[]): StepTimes {
  const spanMs: number[] = [], busyMs: number[] = [], gapMs: number[] = [];
  for (let i = 0; i < starts.length; i++) {
    const a = starts[i], b = i + 1 < starts.length ? starts[i + 1] : stamps.length;
    if (b <= a) continue;
    const passes = stamps.slice(a, b);
    spanMs.push(nsToMs(passes[passes.length - 1].endNs - passes[0].beginNs));
    busyMs.push(busyMsOf(passes));
    if (i > 0 && a > 0) gapMs.push(nsToMs(passes[0].beginNs - stamps[a - 1].endNs));
  }
  const first = stamps[starts[0]], last = stamps[stamps.length - 1];
  const throughputMs = stamps.length ? nsToMs(last.endNs - first.beginNs) / Math.max(1, spanMs.length) : NaN;
  return { spanMs, busyMs, gapMs, throughputMs };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `run` (which records and submits one repetition of GPU work) `reps` times back to back.
 * Timestamps: per-repetition spans from the GPU clock. Wall clock: the repetitions are repeated until
 * at least `minWallMs` has passed in one batch, then total / count (one ~11 ms completion poll per batch).
 * Warm-up: `warmup` repetitions, then (with `warmupMs`) as many more back to back as fill that much time,
 * at most `maxWarmup` in all. The first section of a fresh H100's run had GPU steps of up to 23 ms against
 * a median of 9.26 (PERF.md v44), most likely a low clock after the GPU idled while the CPU built pipelines.
 */
export async function timeRepeated(
  timer: GpuTimer,
  label: string,
  run: (rep: number) => void,
  opts: {
    reps: number;
    warmup?: number;
    warmupMs?: number;
    maxWarmup?: number;
    minWallMs?: number;
    maxReps?: number;
  },
): Promise<{ method: TimingMethod; msPerRep: number; reps: number; times: StepTimes | null }> {
  const gpu = timer.gpu;
  const first = Math.max(1, opts.warmup ?? 1);
  const w0 = performance.now();
  for (let i = 0; i < first; i++) run(-1 - i);
  await gpu.sync(`warming up ${label}`);
  const took = performance.now() - w0;
  const more = Math.min(
    (opts.maxWarmup ?? Infinity) - first,
    Math.ceil(((opts.warmupMs ?? 0) - took) / (took / first)),
  );
  if (more > 0) {
    for (let i = 0; i < more; i++) run(-1 - first - i);
    await gpu.sync(`warming up ${label}`);
  }
  if (timer.hasTimestamps) {
    const starts: number[] = [];
    timer.start(label);
    for (let i = 0; i < opts.reps; i++) {
      starts.push(timer.pending);
      run(i);
    }
    const stamps = await timer.collect();
    await gpu.check(label);
    if (timer.dropped) {
      throw new Error(`${label}: more than ${maxQueries / 2} passes; time fewer repetitions`);
    }
    const times = stepTimes(stamps, starts);
    return { method: timer.method, msPerRep: median(times.spanMs), reps: opts.reps, times };
  }
  // Wall clock: one calibration batch, then a batch long enough that the poll delay is ≲ 3 %.
  const minWall = opts.minWallMs ?? 400;
  let reps = opts.reps, t0 = performance.now();
  for (let i = 0; i < reps; i++) run(i);
  await gpu.sync(label);
  let elapsed = performance.now() - t0;
  if (elapsed < minWall) {
    const per = elapsed / reps;
    reps = Math.min(opts.maxReps ?? 1000, Math.max(reps, Math.ceil(minWall / Math.max(per, 1e-3))));
    t0 = performance.now();
    for (let i = 0; i < reps; i++) run(i);
    await gpu.sync(label);
    elapsed = performance.now() - t0;
  }
  return { method: timer.method, msPerRep: elapsed / reps, reps, times: null };
}
