// A new conversation with an image joining a batch of running rows (MAX_BATCH > 1): how long the rows' streams
// stall, and when the newcomer's first token comes, with its prompt pass run whole while the batch waits
// (JOIN_CHUNK_TOKENS=0) or in pieces between the batch's steps (JoiningPrefill, as WebGpuEngine runs it).
// Wall clock: the stalls are hundreds of ms, and Deno's ~11 ms completion poll is in what a client sees too.
// With timestamp-query each piece's GPU time is reported too (GpuTimer drops the pass generate() encodes
// ahead and never submits when the rows pause: its unwritten queries once hung this section, PERF.md v46).
import { defaultStepsPerReadback, generate } from "../engine/generate.ts";
import { warmUpEngine } from "../engine/warm_up.ts";
import { JoiningPrefill } from "../engine/joining_prefill.ts";
import { defaultGenerationConfig } from "../engine/types.ts";
import type { InternVLModel } from "../model/internvl.ts";
import type { BenchContext, Json } from "./bench_context.ts";
import { randomF32 } from "../ref/random.ts";
import { imagePromptIds, syntheticTextIds } from "./shapes.ts";
import { median } from "./gpu_timer.ts";
import { sig } from "./util.ts";

/** Rows already generating when the newcomer arrives, and their prompts' length. */
const runningRows = 4;
const rowPromptTokens = 64;
/** Steps the rows make before the newcomer arrives (past the first readbacks' start-up). */
const stepsBeforeArrival = 12;

interface JoinRun {
  /** The rows' longest wait between two tokens from the newcomer's arrival until they go on beside it. */
  rowsLongestGapMs: number;
  /** Of which: the longest gap while the newcomer's pieces ran beside them (0 when the pass ran whole). */
  gapBesideMs: number;
  /** From the rows' last token before the pause to their next one (the pause, the rest of the pass). */
  pauseMs: number;
  firstTokenMs: number;
  /** Rows' steps between the arrival and the pause. */
  stepsBeside: number;
  /** GPU time of each piece (timestamp-query; else empty). */
  pieceGpuMs: number[];
  /** CPU time of each piece's `step` (an encoder piece's recording, or a recorded chunk's submit). */
  pieceCpuMs: number[];
  /** CPU time of recording prompt chunks ahead, while the GPU runs the rows' steps. */
  prepareCpuMs: number[];
  /** The five longest gaps between the rows' tokens after the arrival: [ms, steps delivered before it]. */
  longestGaps: [number, number][];
  /**
   * The three longest times the GPU sat idle in the run (timestamp-query): [ms, the label of the pass after
   * it]. A token gap far longer than any piece with the GPU idle as long was spent on the host.
   */
  longestGpuIdle: [number, string][];
  /**
   * Token deliveries of more than a 4-step readback group at once after the arrival: [steps, steps
   * delivered before it]. generate() hands out one group a readback; a delivery of more means a readback was
   * drained before the one ahead of it had been handed out (its tokens a whole group late). Groups with a
   * piece hold 2 steps, so two of them late show as 4: lateReadbacks counts those too.
   */
  lateDeliveries: [number, number][];
  /** Readbacks of the rows' run mapped while an earlier one's tokens were held (GenerateStats). */
  lateReadbacks: number;
}

/**
 * One arrival, as WebGpuEngine.runRounds takes it: with `chunk` > 0 the newcomer's pass runs in pieces between
 * the rows' steps (one a readback group) and the rows pause once it is in; with 0 they pause at once and the
 * whole pass runs. Then the rows and the newcomer go on as one batch.
 */
async function joinOnce(
  ctx: BenchContext,
  model: InternVLModel,
  chunk: number,
  ids: number[],
  pixels: Float32Array,
): Promise<JoinRun> {
  const { shapes } = ctx;
  const tiles = shapes.ttftTiles, imageContextId = shapes.imageContextId;
  const rowIds = Array.from(
    { length: runningRows },
    (_, b) => syntheticTextIds(shapes, rowPromptTokens, b * 131 * 7919 + 11),
  );
  // The whole pass is the same pieces at once: the encoder in one, the prompt in one.
  const whole = chunk === 0;
  const layersPerPiece = whole ? shapes.vision.layers : model.visionLayersLike(chunk, tiles);
  const pieces = whole ? 0 : Math.ceil(shapes.vision.layers / layersPerPiece) + Math.ceil(ids.length / chunk);
  // One piece a readback group (of 2 steps with a piece, generate's stepsBesideWork; 4 is room to spare),
  // and room for the steps in flight: the rows must outlast the pass.
  const maxNew = stepsBeforeArrival + 4 * (pieces + 4) + 32;
  const runner = model.newRunner(runningRows, rowPromptTokens + maxNew + 2);
  const times: number[] = [];
  let arrived = NaN;
  let joiner: JoiningPrefill | null = null;
  const owned: { destroy(): void }[] = [runner];
  const pieceCpuMs: number[] = [], prepareCpuMs: number[] = [];
  const stats = { lateReadbacks: 0 };
  const { timer } = ctx;
  timer.start("step");
  // A call on the newcomer's pass beside the rows, its CPU time kept when it did something.
  const onJoiner = (f: (j: JoiningPrefill) => boolean | void, cpuMs: number[]): boolean => {
    if (whole || !joiner) return false;
    const t0 = performance.now();
    timer.label("piece"); // a piece's passes are made (and stamped) as it is recorded
    const submitted = f(joiner) === true;
    timer.label("step");
    const ms = performance.now() - t0;
    if (ms > 0.5) cpuMs.push(ms);
    return submitted;
  };
  try {
    await generate(model, { ids: rowIds, mask: rowIds.map((r) => r.map(() => 1)), imageEmbeds: null }, {
      ...defaultGenerationConfig,
      maxNewTokens: maxNew,
    }, {
      eosId: -1,
      imageContextId,
      runner,
      onStep: () => {
        times.push(performance.now());
        if (times.length !== stepsBeforeArrival) return;
        arrived = performance.now();
        const encode = () => model.beginImageEncoding(pixels, tiles, { layersPerPiece });
        joiner = new JoiningPrefill(
          model,
          ids,
          imageContextId,
          Promise.resolve({ begin: encode }),
          undefined,
          whole ? ids.length : chunk,
        );
        owned.push(joiner);
      },
      // JOIN_CHUNK_TOKENS=0: the rows pause at once; else once the newcomer's pieces are in.
      pause: () => joiner !== null && (whole || joiner.ready || joiner.failed),
      between: () => onJoiner((j) => j.step(), pieceCpuMs),
      // As the engine does: the next prompt chunk recorded while the GPU runs the rows' steps.
      prepare: () => onJoiner((j) => j.prepare(), prepareCpuMs),
      stats,
    });
    const j = joiner as JoiningPrefill | null; // set in onStep
    if (j === null) throw new Error("join: the rows ended before the newcomer arrived");
    const lastRowToken = times.at(-1)!;
    const beside = [arrived, ...times.filter((t) => t > arrived)];
    const gaps = beside.slice(1).map((t, i): [number, number] => [t - beside[i], i]);
    const gapBesideMs = whole ? 0 : Math.max(0, ...gaps.map(([g]) => g));
    // A delivery: onStep calls under a millisecond apart (one takeOldest loop hands its steps out at once).
    const deliveries: [number, number][] = [];
    beside.slice(1).forEach((t, i) => {
      if (i > 0 && t - beside[i] < 1) deliveries[deliveries.length - 1][0]++;
      else deliveries.push([1, i]);
    });
    if (whole) await j.finish();
    if (!j.ready) {
      throw new Error(`join: the rows ended before the newcomer's pass (${j.error ?? "not ready"})`);
    }
    // As the engine goes on: the rows (each extracted from the batch's cache) and the newcomer in one batch,
    // each from its own cache, one new id each; its first step gives the rows' next token and the newcomer's
    // first.
    const held = runner.cache.length;
    const sources = Array.from(
      { length: runningRows },
      (_, b) => runner.extractRow(b, [[0, held]], held + 1),
    );
    owned.push(...sources);
    const counts = [...sources.map(() => held), ids.length - 1];
    const batch = model.newRunner(runningRows + 1, Math.max(...counts) + 2);
    owned.push(batch);
    batch.adoptPrefixes([...sources, j.runner], counts);
    const last = [...rowIds.map(() => [1]), [ids.at(-1)!]];
    let firstAt = NaN;
    await generate(model, { ids: last, mask: last.map(() => [1]), imageEmbeds: null }, {
      ...defaultGenerationConfig,
      maxNewTokens: 1,
    }, { eosId: -1, imageContextId, runner: batch, onStep: () => firstAt = performance.now() });
    const pauseMs = firstAt - lastRowToken;
    // Consecutive passes labelled "piece" are one piece (submitted back to back).
    const stamps = await timer.collect();
    const pieceGpuMs: number[] = [];
    stamps.forEach((st, i) => {
      if (st.label !== "piece") return;
      if (stamps[i - 1]?.label === "piece") {
        pieceGpuMs[pieceGpuMs.length - 1] += (st.endNs - stamps[i - 1].endNs) / 1e6;
      } else pieceGpuMs.push((st.endNs - st.beginNs) / 1e6);
    });
    const byStart = [...stamps].sort((a, b) => a.beginNs - b.beginNs);
    let busyUntil = byStart[0]?.endNs ?? 0;
    const idle: [number, string][] = [];
    for (const st of byStart.slice(1)) {
      if (st.beginNs > busyUntil) idle.push([(st.beginNs - busyUntil) / 1e6, st.label]);
      busyUntil = Math.max(busyUntil, st.endNs);
    }
    return {
      rowsLongestGapMs: Math.max(gapBesideMs, pauseMs),
      gapBesideMs,
      pauseMs,
      firstTokenMs: firstAt - arrived,
      stepsBeside: times.filter((t) => t > arrived).length,
      pieceGpuMs: pieceGpuMs.map((x) => sig(x, 3)!),
      pieceCpuMs: pieceCpuMs.map((x) => sig(x, 3)!),
      prepareCpuMs: prepareCpuMs.map((x) => sig(x, 3)!),
      longestGaps: gaps.sort((a, b) => b[0] - a[0]).slice(0, 5).map(([g, i]) => [sig(g, 4)!, i]),
      longestGpuIdle: idle.sort((a, b) => b[0] - a[0]).slice(0, 3).map(([ms, label]) => [sig(ms, 3)!, label]),
      lateDeliveries: deliveries.filter(([n]) => n > defaultStepsPerReadback),
      lateReadbacks: stats.lateReadbacks,
    };
  } catch (e) {
    timer.abandon();
    throw e;
  } finally {
    for (const o of owned) o.destroy();
  }
}

export async function joinSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const { shapes } = ctx;
  const m = await ctx.model();
  await warmUpEngine(m.model); // as WebGpuEngine.load does
  const ids = imagePromptIds(shapes);
  const S = shapes.vision.imageSize;
  const pixels = randomF32(shapes.ttftTiles * 3 * S * S, 4343, -2, 2);
  const chunks = shapes.joinChunkTokens;
  // A first arrival of each setting builds its pipelines (prompt pieces of that size), untimed; not worth its
  // time on the tiny model, whose runs check the code path.
  const once = async (chunk: number) => {
    const run = await joinOnce(ctx, m.model, chunk, ids, pixels);
    ctx.opts.log(
      `join: chunk ${chunk}: rows' longest gap ${
        run.rowsLongestGapMs.toFixed(0)
      } ms, newcomer's first token ` +
        `${run.firstTokenMs.toFixed(0)} ms`,
    );
    return run;
  };
  if (shapes.scale === "full") { for (const chunk of chunks) await once(chunk); }
  const runs = new Map<number, JoinRun[]>(chunks.map((c) => [c, []]));
  for (let i = 0; i < shapes.joinRuns; i++) {
    for (const chunk of chunks) runs.get(chunk)!.push(await once(chunk));
  }
  const settings: Record<string, Json> = {};
  for (const [chunk, rs] of runs) {
    const med = (f: (r: JoinRun) => number) => sig(median(rs.map(f)), 4);
    settings[`chunk_${chunk}`] = {
      vision_layers_per_piece: chunk > 0 ? m.model.visionLayersLike(chunk, shapes.ttftTiles) : null,
      rows_longest_gap_ms: med((r) => r.rowsLongestGapMs),
      gap_beside_ms: med((r) => r.gapBesideMs),
      pause_ms: med((r) => r.pauseMs),
      newcomer_first_token_ms: med((r) => r.firstTokenMs),
      rows_steps_beside: med((r) => r.stepsBeside),
      runs: rs.map((r) => ({
        rows_longest_gap_ms: sig(r.rowsLongestGapMs, 4),
        newcomer_first_token_ms: sig(r.firstTokenMs, 4),
      })),
      // The last run's breakdown.
      piece_gpu_ms: rs.at(-1)!.pieceGpuMs,
      piece_cpu_ms: rs.at(-1)!.pieceCpuMs,
      prepare_cpu_ms: rs.at(-1)!.prepareCpuMs,
      longest_gaps_ms_after_steps: rs.at(-1)!.longestGaps,
      // Every run's: the outliers come and go.
      longest_gaps_ms: rs.map((r) => r.longestGaps.slice(0, 2)),
      longest_gpu_idle_ms: rs.map((r) => r.longestGpuIdle),
      late_deliveries_steps_after_steps: rs.map((r) => r.lateDeliveries),
      late_readbacks: rs.map((r) => r.lateReadbacks),
    };
  }
  for (const chunk of chunks) {
    const s = settings[`chunk_${chunk}`] as Record<string, Json>;
    ctx.results[`join_rows_longest_gap_ms_chunk_${chunk}`] = s.rows_longest_gap_ms;
    ctx.results[`join_first_token_ms_chunk_${chunk}`] = s.newcomer_first_token_ms;
  }
  return {
    running_rows: runningRows,
    row_prompt_tokens: rowPromptTokens,
    newcomer_prompt_tokens: ids.length,
    newcomer_tiles: shapes.ttftTiles,
    method: "wall clock, median of runs; piece_gpu_ms: timestamp queries",
    ...settings,
  };
}
