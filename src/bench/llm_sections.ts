// Language-model sections: decode steps at a given context and batch, the per-kernel profile of one step,
// the prompt pass, and the real generate() loop (GPU idle time between steps).
import { startLagProbe } from "./event_loop_lag.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { argmax } from "../ops/argmax.ts";
import { fillRandom } from "../ops/fill_random.ts";
import {
  defaultFirstPartDispatches,
  defaultInFlight,
  defaultStepsPerReadback,
  generate,
  type GenerateTimes,
} from "../engine/generate.ts";
import { defaultGenerationConfig } from "../engine/types.ts";
import { warmUpEngine } from "../engine/warm_up.ts";
import { LmRunner, maxChunkedPrompt } from "../model/lm_runner.ts";
import { kvValueBytes } from "../model/kv_cache.ts";
import type { Tap } from "../model/vision.ts";
import type { BenchContext, Json } from "./bench_context.ts";
import { busyMsOf, joinSplitPasses, median, nsToMs, timeRepeated } from "./gpu_timer.ts";
import { profileKernels } from "./kernel_profile.ts";
import { decodeCost, prefillFlops } from "./model_cost.ts";
import { followupQuestionIds, imagePromptIds } from "./shapes.ts";
import { sig } from "./util.ts";

const round = (x: number, digits?: number) => sig(x, digits === undefined ? 4 : Math.max(4, digits + 1));

/** A runner whose KV cache already holds `context` random positions, ready to decode from. */
export async function decodeRunner(ctx: BenchContext, batch: number, context: number, extra: number) {
  const { gpu, shapes } = ctx;
  const m = await ctx.model();
  const runner = m.model.newRunner(batch, context + extra);
  const r = gpu.recorder("bench.decode.setup");
  // A 1-token prompt sets up positions and keyValid through the public path; the cache is then filled with
  // random keys/values and declared `context` long (attention cost depends on length, not content).
  const ids = Array.from({ length: batch }, (_, b) => [(b * 7919 + 13) % shapes.language.vocab]);
  const free = runner.recordPrefill(r, ids, ids.map(() => [1]), shapes.imageContextId, null);
  runner.cache.k.forEach((t, l) => fillRandom(r, t, { seed: 1000 + l }));
  runner.cache.v.forEach((t, l) => fillRandom(r, t, { seed: 2000 + l }));
  const next = gpu.createTensor("bench.next", "i32", [batch]);
  fillRandom(r, next, { seed: 7, lo: 0, hi: shapes.language.vocab });
  r.submit();
  await gpu.sync("preparing a decode benchmark");
  free();
  runner.cache.length = context;
  const step = (rec: Recorder) => {
    runner.recordDecode(rec, next);
    argmax(rec, runner.logits, next);
  };
  return {
    runner,
    next,
    step,
    destroy: () => {
      runner.destroy();
      next.buffer.destroy();
    },
  };
}

/** Times decode steps submitted back to back (one submit per step, as generate() does). */
export async function timeDecode(
  ctx: BenchContext,
  batch: number,
  context: number,
): Promise<Record<string, Json>> {
  const { gpu, timer, shapes } = ctx;
  const steps = shapes.decodeSteps;
  // Wall-clock fallback may repeat up to 4× the steps after a calibration batch; each step grows the cache.
  const d = await decodeRunner(ctx, batch, context, 6 * steps + 8);
  try {
    let recordMs = 0, runs = 0;
    const run = () => {
      runs++;
      const t0 = performance.now();
      const r = gpu.recorder("decode", d.runner.decodeCache);
      d.step(r);
      r.submit();
      recordMs += performance.now() - t0;
    };
    timer.resetCounts();
    run();
    await gpu.sync("first decode step");
    const counts = { dispatches: timer.dispatches, submits: timer.submits, passes: timer.passes };
    recordMs = 0;
    runs = 0;
    const res = await timeRepeated(timer, `decode b${batch} ctx${context}`, run, {
      reps: steps,
      warmup: 1,
      // ~0.3 s of steps at the real shapes; the cache holds 6·steps + 8 positions past the context, of
      // which the first step, this warm-up and the timing (wall clock: up to 5·steps) use at most 6·steps + 1.
      warmupMs: shapes.scale === "full" ? 300 : 0,
      maxWarmup: steps,
      maxReps: 4 * steps,
    });
    const throughputMs = res.times ? res.times.throughputMs : res.msPerRep;
    const cost = decodeCost(shapes.language, context, batch, kvValueBytes(ctx.opts.kvCacheDtype ?? "f32"));
    const GBps = cost.totalBytes / (throughputMs * 1e6);
    return {
      batch,
      context,
      steps: res.reps,
      method: res.method,
      ms_per_step: round(throughputMs),
      gpu_span_ms_median: res.times ? round(median(res.times.spanMs)) : null,
      gpu_busy_ms_median: res.times ? round(median(res.times.busyMs)) : null,
      gpu_idle_ms_between_steps_median: res.times ? round(median(res.times.gapMs)) : null,
      // What the medians hide when ms_per_step exceeds them: one slow step (span max) or one long wait between
      // steps (idle max, total). v40's weight-only batch runs took 15.6 / 24.5 ms a step against medians of
      // 13.4 / 21.5 ms, and the run kept neither figure.
      gpu_span_ms_max: res.times && res.times.spanMs.length ? round(Math.max(...res.times.spanMs)) : null,
      gpu_idle_ms_between_steps_max: res.times && res.times.gapMs.length
        ? round(Math.max(...res.times.gapMs))
        : null,
      gpu_idle_ms_total: res.times ? round(res.times.gapMs.reduce((a, b) => a + b, 0)) : null,
      tokens_per_s: round((batch * 1000) / throughputMs, 2),
      cpu_record_submit_ms_per_step: round(recordMs / runs),
      dispatches_per_step: counts.dispatches,
      submits_per_step: counts.submits,
      passes_per_step: counts.passes,
      bytes_per_step: cost.totalBytes,
      flops_per_step: cost.flops,
      achieved_GBps: round(GBps, 1),
      bw_fraction_of_copy: ctx.copyGBps ? round(GBps / ctx.copyGBps) : null,
      roofline_ms_at_copy_bw: ctx.copyGBps ? round(cost.totalBytes / (ctx.copyGBps * 1e6)) : null,
    };
  } finally {
    d.destroy();
  }
}

/** Decode at batch 1 for every context in the shapes. */
export async function decodeSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const out: Record<string, Json> = {};
  for (const c of ctx.shapes.decodeContexts) {
    const r = await timeDecode(ctx, 1, c);
    out[`b1_ctx${c}`] = r;
    ctx.results[`decode_ms_b1_ctx${c}`] = r.ms_per_step;
    if (c === ctx.shapes.decodeContexts[0]) {
      ctx.results.dispatches_per_decode_step = r.dispatches_per_step;
      ctx.results.submits_per_decode_step = r.submits_per_step;
      ctx.results.gpu_idle_ms_between_steps = r.gpu_idle_ms_between_steps_median;
      ctx.results.decode_cpu_record_ms = r.cpu_record_submit_ms_per_step;
    }
  }
  return out;
}

/** Aggregate tokens/s at the larger batches (first decode context). */
export async function batchSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const out: Record<string, Json> = {};
  const c = ctx.shapes.decodeContexts[0];
  for (const b of ctx.shapes.decodeBatches) {
    const r = await timeDecode(ctx, b, c);
    out[`b${b}_ctx${c}`] = r;
    ctx.results[`batch${b}_tokens_per_s`] = r.tokens_per_s;
  }
  return out;
}

/** Every kernel of one batch-1 decode step in its own timed pass: achieved GB/s against the copy kernel. */
export async function kernelsSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const { gpu, timer, shapes } = ctx;
  if (!timer.hasTimestamps) return { skipped: "per-kernel timing needs timestamp-query" };
  const d = await decodeRunner(ctx, 1, shapes.decodeContexts[0], 4);
  try {
    const warm = gpu.recorder("warm");
    d.step(warm);
    warm.submit();
    await gpu.sync("warming up the kernel profile");
    const prof = await profileKernels(gpu, timer, "decode.kernels", d.step, ctx.copyGBps);
    if (!prof) return { skipped: "no timestamps" };
    // Every int8 matrix-vector kernel of the step (plain, norm-fused and gate/up-fused).
    const matvecKernels = ["linear_matvec", "matvec_i8", "matvec_i8_vec", "rms_norm_linear", "matvec_dp4a"];
    const matvec = prof.rows.filter((r) => matvecKernels.includes(r.kernel) && r.bytesModel === "model");
    const bytes = matvec.reduce((s, r) => s + r.GBps * r.ms * 1e6, 0);
    const ms = matvec.reduce((s, r) => s + r.ms, 0);
    const gemvGBps = bytes / (ms * 1e6);
    ctx.results.gemv_GBps = round(gemvGBps, 1);
    ctx.results.gemv_bw_fraction = ctx.copyGBps ? round(gemvGBps / ctx.copyGBps) : null;
    const followup = await profileFollowupPass(ctx);
    const batch8 = await profileBatchStep(ctx, 8);
    // A step of more than 8 rows runs in row groups (src/model/language.ts): profiled when --batches asks.
    const grouped = shapes.decodeBatches.find((b) => b > 8);
    const groupedStep = grouped === undefined
      ? {}
      : { [`batch${grouped}_step`]: await profileBatchStep(ctx, grouped) };
    return {
      context: shapes.decodeContexts[0],
      followup_pass: followup,
      batch8_step: batch8,
      ...groupedStep,
      dispatches: prof.dispatches,
      sum_of_kernel_ms: round(prof.totalMs),
      gemv_GBps: round(gemvGBps, 1),
      kernels: prof.rows.map((r) => ({
        op: r.op,
        kernel: r.kernel,
        dispatches: r.dispatches,
        ms: round(r.ms, 4),
        share: round(r.share),
        GBps: round(r.GBps, 1),
        TFLOPs: round(r.TFLOPs, 3),
        bw_fraction: r.bwFraction === null ? null : round(r.bwFraction),
        bytes_model: r.bytesModel,
      })),
    };
  } finally {
    d.destroy();
  }
}

/** Per-kernel profile of one decode step of `batch` sequences at the first decode context (the batch target). */
async function profileBatchStep(ctx: BenchContext, batch: number): Promise<Json> {
  const { gpu, timer, shapes } = ctx;
  const d = await decodeRunner(ctx, batch, shapes.decodeContexts[0], 4);
  try {
    const warm = gpu.recorder("warm");
    d.step(warm);
    warm.submit();
    await gpu.sync("warming up the batch profile");
    const prof = await profileKernels(gpu, timer, `decode.batch${batch}.kernels`, d.step, ctx.copyGBps);
    if (!prof) return null;
    // How many activation columns the last layers' LLM.int8 passes kept in f32 (random weights, random cache).
    const int8 = d.runner.step.llmInt8;
    const outlierColumns = int8
      ? {
        hidden: (await gpu.readU32(int8.hidden.outliers))[0],
        intermediate: int8.inter ? (await gpu.readU32(int8.inter.outliers))[0] : null,
      }
      : null;
    return {
      batch,
      llm_int8_outlier_columns: outlierColumns,
      sum_of_kernel_ms: round(prof.totalMs),
      kernels: prof.rows.map((r) => ({ op: r.op, dispatches: r.dispatches, ms: round(r.ms, 4) })),
    };
  } finally {
    d.destroy();
  }
}

/**
 * Per-kernel profile of a follow-up round's prompt pass as the ttft section runs it: the last answer token and
 * the next question (followupQuestionIds, 31 ids in all) in one pass over the kept conversation of the TTFT
 * prompt's length.
 */
async function profileFollowupPass(ctx: BenchContext): Promise<Json> {
  const { gpu, timer, shapes } = ctx;
  const context = imagePromptIds(shapes).length;
  const answer = (7919 + 11) % shapes.language.vocab;
  const ids = [answer === shapes.imageContextId ? answer - 1 : answer, ...followupQuestionIds(shapes)];
  const d = await decodeRunner(ctx, 1, context, ids.length + 8);
  try {
    const frees: (() => void)[] = [];
    const record = (r: Recorder) => {
      d.runner.cache.length = context;
      frees.push(d.runner.recordPrefill(r, [ids], [ids.map(() => 1)], shapes.imageContextId, null));
    };
    const warm = gpu.recorder("warm");
    record(warm);
    warm.submit();
    await gpu.sync("warming up the follow-up pass profile");
    const prof = await profileKernels(gpu, timer, "followup.kernels", record, ctx.copyGBps);
    frees.forEach((f) => f());
    if (!prof) return null;
    return {
      context,
      tokens: ids.length,
      sum_of_kernel_ms: round(prof.totalMs),
      kernels: prof.rows.map((r) => ({ op: r.op, dispatches: r.dispatches, ms: round(r.ms, 4) })),
    };
  } finally {
    d.destroy();
  }
}

/** Records a prompt pass of T random tokens (no image) into a fresh runner; returns it and a cleanup. */
function recordPrompt(ctx: BenchContext, runner: LmRunner, T: number, r: Recorder, seed: number, tap?: Tap) {
  const V = ctx.shapes.language.vocab;
  const ids = Array.from({ length: T }, (_, t) => (seed * 104729 + t * 7919) % V);
  // Text ids only: never the image-context id (that needs image rows).
  const row = ids.map((id) => (id === ctx.shapes.imageContextId ? id - 1 : id));
  return runner.recordPrefill(r, [row], [row.map(() => 1)], ctx.shapes.imageContextId, null, tap);
}

/** One prompt pass of `prefillTokens` tokens (after a short warm-up that builds the same pipelines). */
export async function prefillSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const { gpu, timer, shapes } = ctx;
  const m = await ctx.model();
  const T = shapes.prefillTokens;
  // INT8_MATMUL=llm-int8(-prefill): the w2 input outlier counts. A Recorder copies after its pass, so the
  // timed pass (one submit) can give only the last layer's; the per-kernel profile below submits after
  // every dispatch, so there each layer's count is copied before the next layer overwrites it.
  const layers = shapes.language.layers;
  const countOut = gpu.createTensor("bench.prefill.w2_outliers", "u32", [layers]);
  let counted = 0; // 1: the last layer's, 2: every layer's
  const countTap = (every: boolean): Tap => (name, layer, t, r) => {
    if (name === "lm.llm_int8.w2_outliers" && (every || layer === layers - 1)) {
      r.copyAfter(t, countOut.buffer, 4, 4 * layer);
      counted = every ? 2 : 1;
    }
  };
  const tap = countTap(false);
  const once = async (tokens: number, label: string) => {
    const runner = m.model.newRunner(1, tokens + 1);
    try {
      timer.start(label);
      const t0 = performance.now();
      const r = gpu.recorder(label);
      const free = recordPrompt(ctx, runner, tokens, r, 3, tap);
      r.submit();
      const stamps = await timer.collect();
      await gpu.sync(label);
      const wall = performance.now() - t0;
      free();
      return { ms: stamps.length ? busyMsOf(stamps) : wall, wall };
    } finally {
      runner.destroy();
    }
  };
  // The warm-up is one tiled pass (longer than a chunked prompt), so it builds the same pipelines.
  const warmTokens = Math.min(T, 2 * maxChunkedPrompt);
  const warmMs = (await once(warmTokens, "prefill.warmup")).ms;
  const { ms, wall } = await once(T, `prefill ${T}`);
  const w2Last = counted ? (await gpu.readU32(countOut))[layers - 1] : null;
  const flops = prefillFlops(shapes.language, T);
  ctx.results.prefill_ms_1800 = shapes.prefillTokens === 1800 ? round(ms, 1) : null;
  // Every kernel of the prompt pass in its own timed pass (when the budget allows it).
  let kernels: Json = null;
  if (timer.hasTimestamps && ctx.fits(ms * 4 + 2000)) {
    const runner = m.model.newRunner(1, T + 1);
    const frees: (() => void)[] = [];
    try {
      const prof = await profileKernels(gpu, timer, "prefill.kernels", (r) => {
        frees.push(recordPrompt(ctx, runner, T, r, 3, countTap(true)));
      }, ctx.copyGBps);
      if (prof) {
        kernels = prof.rows.map((x) => ({
          op: x.op,
          dispatches: x.dispatches,
          ms: round(x.ms, 3),
          share: round(x.share),
          TFLOPs: round(x.TFLOPs, 3),
        }));
      }
    } finally {
      frees.forEach((f) => f());
      runner.destroy();
    }
  }
  const w2ByLayer = counted === 2 ? Array.from(await gpu.readU32(countOut)) : null;
  countOut.buffer.destroy();
  return {
    tokens: T,
    method: timer.method,
    warmup_tokens: warmTokens,
    warmup_ms: round(warmMs, 1),
    ms: round(ms, 1),
    // From recording the pass to the GPU done (allocation, recording before the GPU starts, Deno's ~11 ms
    // completion poll): a text-only prompt's time to first token, less sampling and the readback.
    pass_wall_ms: round(wall, 1),
    flops,
    TFLOPs: round(flops / (ms * 1e9), 3),
    tokens_per_s: round((T * 1000) / ms, 1),
    llm_int8_outlier_columns_last_w2: w2Last,
    llm_int8_outlier_columns_w2_by_layer: w2ByLayer,
    kernels,
  };
}

/**
 * The real generate() loop (greedy, ring of mappable readbacks, several steps in flight) after a prompt of
 * decodeContexts[0] tokens: tokens/s as a client sees it and the GPU idle time between its steps.
 */
export async function loopSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const { timer, shapes } = ctx;
  const m = await ctx.model();
  // As WebGpuEngine.load does. Run before any decode section, the first generation compiled its pipelines
  // after its first step (0.4–0.8 s of GPU idle on the H100, PERF.md v47) and its time to first token told
  // nothing about the loop; after the pipelines alone, the first generation of a process still starved its
  // first readback group (v74).
  await warmUpEngine(m.model);
  const L = shapes.decodeContexts[0], n = shapes.loopTokens, V = shapes.language.vocab;
  const ids = Array.from({ length: L }, (_, t) => (t * 7919 + 11) % V).map((id) =>
    id === shapes.imageContextId ? id - 1 : id
  );
  const prompt = { ids: [ids], mask: [ids.map(() => 1)], imageEmbeds: null };
  // One run per queue depth and readback grouping: the GPU timestamps tell how long it waited for the CPU
  // between steps; the wall clock between token callbacks is what a client sees (its first callbacks can
  // come late while the CPU is still filling the queue, so it is taken over the second half of the tokens).
  const runs: Record<string, Json> = {};
  // The default first (the headline figures), then one map per step (the loop before readback groups) and
  // a deeper queue.
  const variants = [[defaultInFlight, defaultStepsPerReadback], [5, 1], [24, 8], [24, 4]];
  for (const [inFlight, stepsPerReadback] of variants) {
    const stepTimes: number[] = [];
    const times: GenerateTimes = { mapBlock: [], drainToSubmit: [], submitAfterDrain: [], submit: [] };
    timer.resetCounts();
    timer.start("loop");
    const t0 = performance.now();
    const out = await generate(m.model, prompt, {
      ...defaultGenerationConfig,
      maxNewTokens: n,
    }, {
      eosId: -1, // random weights: never stop early
      imageContextId: shapes.imageContextId,
      inFlight,
      stepsPerReadback,
      onStep: () => stepTimes.push(performance.now()),
      stats: { lateReadbacks: 0, times },
      firstPartDispatches: shapes.loopFirstPartDispatches,
    });
    const wallMs = performance.now() - t0;
    const passes = await timer.collect();
    // A step submitted in two parts (generate's firstPartDispatches, the step after each drain) ran as two
    // passes: one step from the first's beginning to the second's end, the GPU idle between them its own.
    const stamps = joinSplitPasses(passes);
    // The prompt pass (and the first choice) may be submitted in parts (promptSubmits in lm_runner.ts);
    // every later step is one step's stamp, so the decode steps are the last new_tokens − 1 stamps.
    const decodeSteps = Math.min(out[0].length - 1, stamps.length - 1);
    const promptPasses = stamps.length - decodeSteps;
    const decodeStamps = stamps.slice(promptPasses);
    const gaps = decodeStamps.map((s, i) =>
      nsToMs(s.beginNs - (i === 0 ? stamps[promptPasses - 1] : decodeStamps[i - 1]).endNs)
    );
    const busy = decodeStamps.map((s) => nsToMs(s.endNs - s.beginNs) - s.innerIdleMs);
    const splitSteps = decodeStamps.filter((s) => s.split);
    const total = (ms: number[]) => ms.reduce((a, b) => a + b, 0);
    // [step, ms] of every gap longer than `over` ms.
    const gapsOver = (over: number, digits: number) =>
      gaps.flatMap((g, i) => (g > over ? [[i + 1, round(g, digits)]] : []));
    // Tokens arrive in groups, and the first groups can wait while the CPU fills the queue, so callback
    // spacing overstates the rate: the figure is the whole run's wall time after the first token over the
    // tokens after it.
    const n1 = stepTimes.length;
    const decodeWall = n1 > 1 ? (wallMs - (stepTimes[0] - t0)) / (n1 - 1) : NaN;
    const span = decodeStamps.length > 1
      ? nsToMs(decodeStamps[decodeStamps.length - 1].endNs - decodeStamps[0].beginNs) / decodeStamps.length
      : NaN;
    runs[`in_flight_${inFlight}_per_readback_${stepsPerReadback}`] = {
      new_tokens: out[0].length,
      prompt_passes: promptPasses,
      wall_ms: round(wallMs, 1),
      ttft_wall_ms: round(stepTimes[0] - t0, 1),
      decode_wall_ms_per_token: round(decodeWall),
      tokens_per_s: round(1000 / decodeWall, 2),
      gpu_paced_tokens_per_s: round(1000 / span, 2),
      submits: timer.submits,
      gpu_busy_ms_per_step_median: stamps.length ? round(median(busy)) : null,
      gpu_idle_ms_between_steps_median: stamps.length ? round(median(gaps)) : null,
      gpu_idle_ms_between_steps_max: stamps.length ? round(Math.max(...gaps)) : null,
      // Where the idle time is: its total over the decode steps, and the steps that waited > 5 ms.
      gpu_idle_ms_total: stamps.length
        ? round(total(gaps) + total(splitSteps.map((s) => s.innerIdleMs)), 1)
        : null,
      gpu_idle_steps_over_5ms: gapsOver(5, 3),
      // The idle time while the queue first fills (the steps before the first readback can return) against
      // the steps after, and every gap over 0.5 ms: whether the loop starves at its start or all along.
      gpu_idle_ms_first_in_flight_steps: stamps.length ? round(total(gaps.slice(0, inFlight)), 2) : null,
      gpu_idle_steps_over_half_ms: gapsOver(0.5, 2),
      // The GPU idle before each step that follows a readback's drain (the queue empty), against this
      // thread's part of it: from the map call's return to the next submit call, and that call itself.
      gpu_idle_ms_after_drain_median: stamps.length
        ? round(median(gaps.filter((_, i) => i % stepsPerReadback === 0)))
        : null,
      // Steps submitted in two parts, and the GPU idle between a step's two parts (in the total above).
      split_steps: splitSteps.length,
      gpu_idle_ms_inside_split_steps_median: splitSteps.length
        ? round(median(splitSteps.map((s) => s.innerIdleMs)))
        : null,
      cpu_ms_map_block_median: round(median(times.mapBlock)),
      cpu_ms_drain_to_submit_median: round(median(times.drainToSubmit)),
      cpu_ms_submit_after_drain_median: round(median(times.submitAfterDrain)),
      cpu_ms_submit_median: round(median(times.submit)),
    };
    if (inFlight === defaultInFlight && stepsPerReadback === defaultStepsPerReadback) {
      ctx.results.loop_gpu_idle_ms_per_step = stamps.length ? round(median(gaps)) : null;
      ctx.results.loop_tokens_per_s = round(1000 / decodeWall, 2);
    }
  }
  // The default loop once more with a 1 ms timer on this thread: how late it fires is how long an HTTP
  // request would wait on a server whose engine runs on its serving thread (ENGINE_THREAD=main), since each
  // readback's mapAsync blocks the thread until the GPU queue is empty.
  const stopLag = startLagProbe();
  const lagT0 = performance.now();
  await generate(m.model, prompt, { ...defaultGenerationConfig, maxNewTokens: n }, {
    eosId: -1,
    imageContextId: shapes.imageContextId,
    firstPartDispatches: shapes.loopFirstPartDispatches,
  });
  const lag = stopLag();
  const eventLoopLag = { ...lag, wall_ms: round(performance.now() - lagT0, 1) };
  // The same prompt generating one token, whose first readback is its last: the gap to a run's
  // ttft_wall_ms is how long generate() held the first token of a longer response back.
  const t1 = performance.now();
  let first = NaN;
  await generate(m.model, prompt, {
    ...defaultGenerationConfig,
    maxNewTokens: 1,
  }, { eosId: -1, imageContextId: shapes.imageContextId, onStep: () => first = performance.now() });
  return {
    prompt_tokens: L,
    method: timer.method,
    first_part_dispatches: shapes.loopFirstPartDispatches ?? defaultFirstPartDispatches,
    ttft_wall_ms_one_token: round(first - t1, 1),
    event_loop_lag_default: eventLoopLag,
    ...runs,
  };
}
