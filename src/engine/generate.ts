import type { Tensor } from "../gpu/tensor.ts";
import type { InternVLModel } from "../model/internvl.ts";
import type { LmRunner } from "../model/lm_runner.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { argmax } from "../ops/argmax.ts";
import { markSeen, repetitionPenalty } from "../ops/repetition_penalty.ts";
import { sampleToken } from "../ops/sample_token.ts";
import type { GenerationConfig } from "./types.ts";

/** Decode steps kept in flight by default (see GenerateOptions.inFlight). */
export const defaultInFlight = 12;
/**
 * Steps whose ids come back through one mapped buffer by default. Deno resolves each mapAsync on a poll
 * about 11 ms apart, so one map per step held generate() to ~12.3 ms a token on an H100 whose step took
 * 10.8 ms of GPU time, however many steps were in flight (bench v5: GPU idle ~2 ms between steps at 5,
 * 12 and 24 in flight).
 */
export const defaultStepsPerReadback = 4;

/**
 * Steps of a readback group before whose first step `between` submitted work (a joining round's piece): the
 * rows' tokens come out once a group has run, so a group holding a piece of ~0.13–0.25 s (H100) made the rows'
 * streams wait for the piece and 4 steps between two deliveries; 2 halve the steps run beside each piece.
 */
export const defaultStepsBesideWork = 2;

/**
 * Deno settles a map's promise about this long after the mapAsync call returns (a 10 ms sleep after its
 * blocking poll), and only while the event loop waits on a timer: generate() gives it one once a readback is
 * this old (scripts/probe_map_async.ts).
 */
const mapSettleMs = 10;

/**
 * The most a step whose map will drain the queue waits for the readback ahead of it to settle. That readback's
 * GPU work has run (its map call returned once the queue was empty), so it settles within ~mapSettleMs; a
 * wait of a few ms raced Deno's settling and sometimes lost, and the drain then held its tokens back a whole
 * group: 0.42–0.60 s gaps in streams beside a joining round whose groups took 0.15–0.21 s (H100, PERF.md
 * v47). The cap only bounds a runtime that settles maps later than Deno 2.9.6.
 */
const drainWaitMs = 100;

/**
 * Dispatches of the step submitted right after a readback's drain that go to the GPU first, in a command
 * buffer of their own (Recorder.encode's firstPart): the GPU is idle then, and starts on them while the
 * runtime takes in the rest. 48 is about 4 of InternLM2-20B's 48 layers (~0.6 ms of an H200's step), more
 * than the rest's submit holds the thread (0.2–0.27 ms there). Measured on an H200 (docs/PERF.md v73): the
 * GPU idle before a step after a drain 0.75–0.80 → 0.48–0.63 ms, of a 128-token loop 33–47 → 20–30 ms.
 */
export const defaultFirstPartDispatches = 48;

/**
 * A step recorded and encoded: `submit` sends it; `drains` when its readback's map follows the submit;
 * `opens` when it is the first step of a readback group (after the prompt's).
 */
interface EncodedStep {
  submit: () => void;
  drains: boolean;
  opens: boolean;
}

/**
 * Resolves when `p` settles or after `ms`, whichever is first, leaving no timer behind. The map's sleep is a
 * timer of Deno's runtime, which fires while the event loop waits for the next timer, not on a mere turn.
 * (Exported for the probes that replay this wait: scripts/probe_map_async.ts, scripts/probe_first_readback.ts.)
 */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.then(() => {}, () => {}), new Promise<void>((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
}

export interface GenerateInput {
  /** [B][L] prompt ids, left-padded to one length. */
  ids: number[][];
  /** [B][L] 1 = real token, 0 = padding. */
  mask: number[][];
  /** [M, D] image embeddings for the <IMG_CONTEXT> positions, in order over the flattened batch. */
  imageEmbeds: Tensor | null;
}

/** What a generation counts as it runs (GenerateOptions.stats), for benchmarks. */
export interface GenerateStats {
  /**
   * Readbacks mapped while an earlier one's tokens had not been handed out: the map drains the queue first,
   * so those tokens came out a whole readback group late.
   */
  lateReadbacks: number;
  /**
   * CPU times in ms, when given (the bench's loop section): how long each readback's map call held this
   * thread (the GPU running all that was queued), how long from its return to the next step's submit call,
   * and how long that submit call and every other one took. The GPU is idle from a drain's end until the
   * next step reaches it, so these split that gap into the loop's part and the runtime's.
   */
  times?: GenerateTimes;
}

/** GenerateStats.times: CPU ms, one entry a map call or submit. */
export interface GenerateTimes {
  mapBlock: number[];
  drainToSubmit: number[];
  submitAfterDrain: number[];
  submit: number[];
}

export interface GenerateOptions {
  eosId: number;
  imageContextId: number;
  signal?: AbortSignal;
  /** Called as soon as a step's tokens are known: one id per row still generating (−1 for finished rows). */
  onStep?: (ids: number[]) => void;
  /** Decode steps kept in flight before waiting for the oldest (hides Deno's ~11 ms completion poll). */
  inFlight?: number;
  /** Consecutive steps reported through one readback (their tokens reach onStep together). */
  stepsPerReadback?: number;
  /**
   * A runner to continue (a kept conversation: the ids are appended after its cache) and to leave alive
   * for the caller; by default a fresh runner is made and destroyed.
   */
  runner?: LmRunner;
  /**
   * Per row, when rows are separate requests batched together: the most new tokens of each (≤ the config's
   * maxNewTokens, which bounds the run), and a signal whose abort finishes that row alone.
   */
  rowMaxNewTokens?: number[];
  rowSignals?: (AbortSignal | undefined)[];
  /** Per row, sampling seeds (u32): row b then draws what it would draw alone with its seed. */
  rowSeeds?: number[];
  /**
   * Per row, the ids it generated before (a row continued after a pause): its draws count on from them, and
   * the repetition penalty counts them as seen, so the row goes on as it would have alone.
   */
  rowBefore?: number[][];
  /**
   * Asked before each new step: true stops submitting steps, takes the tokens of those in flight and
   * returns, the runner (the caller's) holding every row's cache up to its last token but one. Rows that
   * have not ended then are the caller's to continue (the engine's waiting rounds join a running batch so).
   */
  pause?: () => boolean;
  /**
   * Called before the first step of each readback group is submitted: may submit GPU work of its own (the
   * engine's joining round's prompt pass, a piece a call), which then runs between two of this generation's
   * steps, and returns true if it did. Once a group, so a readback waits for at most one such piece: the
   * rows' streams stall for a piece, not for all that could be queued in the steps in flight.
   */
  between?: () => boolean | void;
  /**
   * Steps of a readback group whose `between` submitted work (2 … stepsPerReadback; default
   * defaultStepsBesideWork): the rows' tokens then come out after the piece and this many steps. At least 2:
   * the group's first step is encoded before `between` runs, so it cannot end the group.
   */
  stepsBesideWork?: number;
  /**
   * Called at each readback, before its wait (Deno's mapAsync blocks this thread until the GPU has run all
   * that was submitted): CPU work done here (recording the next `between` piece) overlaps the GPU's.
   */
  prepare?: () => void;
  /**
   * Dispatches of the step after each readback's drain submitted ahead of the rest of it (default
   * defaultFirstPartDispatches; 0: each step in one submit).
   */
  firstPartDispatches?: number;
  /** Counters this generation adds to (GenerateStats). */
  stats?: GenerateStats;
}

/**
 * Greedy or sampled decoding, HF `generate` semantics (greedy_search / sample in transformers 4.37):
 * logits → repetition penalty → (temperature → top-k → top-p → draw) or argmax, stop per row at eos or
 * max_new_tokens. The chosen ids never leave the GPU on the critical path: each step's choice is the next
 * step's input, and copies into a ring of mappable buffers report tokens without stalling the queue.
 * Returns the generated ids per row, including the eos id when a row stopped on it.
 */
export async function generate(
  model: InternVLModel,
  input: GenerateInput,
  config: GenerationConfig,
  options: GenerateOptions,
): Promise<number[][]> {
  if (config.numBeams > 1) throw new Error("generate: use beamSearch for num_beams > 1");
  const gpu = model.gpu;
  const B = input.ids.length, L = input.ids[0].length;
  const maxNew = config.maxNewTokens;
  const owned = !options.runner;
  const runner = options.runner ?? model.newRunner(B, L + maxNew);
  if (runner.batch !== B || runner.remaining < L + maxNew) {
    throw new Error(
      `generate: the runner has room for ${runner.remaining} positions, ${L} + ${maxNew} needed`,
    );
  }
  const rowMax = options.rowMaxNewTokens ?? new Array<number>(B).fill(maxNew);
  if (rowMax.length !== B || rowMax.some((n) => !(Number.isInteger(n) && n >= 1 && n <= maxNew))) {
    throw new Error(`generate: rowMaxNewTokens must give each of ${B} rows 1..${maxNew} tokens`);
  }
  const V = model.dims.language.vocab;
  if (options.rowSeeds && options.rowSeeds.length !== B) {
    throw new Error(`generate: rowSeeds has ${options.rowSeeds.length} seeds for ${B} rows`);
  }
  if (options.rowBefore && options.rowBefore.length !== B) {
    throw new Error(`generate: rowBefore has ${options.rowBefore.length} rows for ${B}`);
  }
  const before = options.rowBefore ?? new Array<number[]>(B).fill([]);
  const rowSeeds = options.rowSeeds && config.doSample
    ? gpu.uploadTensor(
      "gen.row_seeds",
      "u32",
      [B, 2],
      Uint32Array.from(options.rowSeeds.flatMap((seed, b) => [seed, before[b].length])),
    )
    : undefined;
  const next = gpu.createTensor("gen.next", "i32", [B]);
  // The reference calls generate(inputs_embeds=…), so HF's input_ids hold only generated tokens: the
  // repetition penalty never sees the prompt.
  const penalty = config.repetitionPenalty !== 1 ? config.repetitionPenalty : null;
  const seenInit = new Uint32Array(penalty ? B * V : 0);
  if (penalty) before.forEach((ids, b) => ids.forEach((id) => seenInit[b * V + id] = 1));
  const seen = penalty ? gpu.uploadTensor("gen.seen", "u32", [B, V], seenInit) : null;
  // The first step (the prompt pass's token: time to first token) is read back alone; after it, the steps
  // go in readback groups of K (besideWork when `between` submitted work before the group's first step),
  // each step writing its ids at its row of its group's ring slot, mapped once the group is complete (or at
  // the last step). The ring holds every group that can be in flight plus the one being filled, and one more
  // for the step submitted right after a readback whatever the in-flight count (see `choose`).
  const K = Math.max(1, Math.floor(options.stepsPerReadback ?? defaultStepsPerReadback));
  const besideWork = Math.min(K, Math.max(2, Math.floor(options.stepsBesideWork ?? defaultStepsBesideWork)));
  const inFlight = Math.max(K, Math.floor(options.inFlight ?? defaultInFlight));
  const ringSize = Math.ceil(inFlight / besideWork) + 2;
  const firstPart = Math.max(0, Math.floor(options.firstPartDispatches ?? defaultFirstPartDispatches));
  const ring = Array.from({ length: ringSize }, (_, i) =>
    gpu.device.createBuffer({
      label: `gen.readback${i}`,
      size: Math.max(16, 4 * B * K),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    }));
  const outputs: number[][] = Array.from({ length: B }, () => []);
  const finished = new Array<boolean>(B).fill(false);
  const pending: {
    slot: number;
    steps: number;
    mapped: Promise<void>;
    mappedAt: number;
    settled: boolean;
  }[] = [];
  let submitted = 0, reported = 0, done = false, paused = false;
  // `submitted` when the last readback's map returned: the GPU queue was empty then.
  let drainedAt = 0;
  // performance.now() when the last map call returned (kept only with options.stats.times).
  let drainReturnedAt = 0;
  // The next decode step, encoded but not yet submitted (see `choose`).
  let ready: EncodedStep | null = null;
  // The readback group being encoded: its number, first step and size; and the step that opens the next.
  let group = 0, groupStart = 0, groupSize = K, nextGroupStart = 1;

  const encodeDecodeStep = (ahead = 0) => {
    const r = gpu.recorder("decode", runner.decodeCache);
    runner.recordDecode(r, next);
    return choose(r, submitted, ahead);
  };

  // Records step `step`'s choice into r and encodes it.
  // `ahead`: dispatches submitted ahead of the rest (the step after a drain).
  const choose = (r: Recorder, step: number, ahead = 0): EncodedStep => {
    if (penalty && seen) repetitionPenalty(r, runner.logits, seen, penalty);
    if (config.doSample) {
      sampleToken(r, runner.logits, next, {
        temperature: config.temperature,
        topK: config.topK,
        topP: config.topP,
        seed: config.seed ?? 0,
        step,
        rowSeeds,
      });
    } else {
      argmax(r, runner.logits, next);
    }
    if (seen) markSeen(r, next, seen);
    // Steps are encoded in order, and a group's size is settled (by `between`, in the loop) before its
    // second step is encoded.
    const opens = step > 0 && step === nextGroupStart;
    if (opens) [group, groupStart, groupSize] = [group + 1, step, K];
    const row = step - groupStart;
    const slot = group % ringSize;
    r.copyAfter(next, ring[slot], 4 * B, 4 * B * row);
    const submit = r.encode({ firstPart: ahead });
    const steps = row + 1;
    const drains = step === 0 || steps >= groupSize || step + 1 === maxNew;
    if (drains) nextGroupStart = step + 1;
    return {
      drains,
      opens,
      submit: () => {
        const times = options.stats?.times;
        const t0 = times ? performance.now() : 0;
        const afterDrain = submitted === drainedAt && drainReturnedAt > 0;
        if (times && afterDrain) times.drainToSubmit.push(t0 - drainReturnedAt);
        submit();
        if (times) (afterDrain ? times.submitAfterDrain : times.submit).push(performance.now() - t0);
        submitted++;
        if (drains) {
          // Deno's mapAsync polls the device until everything submitted has run, blocking this thread, so the
          // GPU is idle when it returns until the next step is submitted: that step is encoded first (~3.5 ms
          // of CPU for InternLM2-20B on the H100 host, while the GPU still works) and the loop submits it at
          // once, even when that makes one step more than `inFlight` (never two: a step submitted that way
          // encodes none ahead), its first dispatches in a submit of their own (defaultFirstPartDispatches).
          // A generation that stops at this readback never submits it (the runner is cut back before any
          // reuse, as after the steps still in flight).
          if (submitted < maxNew && submitted - reported <= inFlight) ready = encodeDecodeStep(firstPart);
          options.prepare?.();
          if (options.stats && pending.length > 0) options.stats.lateReadbacks++;
          const mapAt = times ? performance.now() : 0;
          const mapped = ring[slot].mapAsync(GPUMapMode.READ);
          if (times) {
            drainReturnedAt = performance.now();
            times.mapBlock.push(drainReturnedAt - mapAt);
          }
          const entry = { slot, steps, mapped, mappedAt: performance.now(), settled: false };
          mapped.then(() => entry.settled = true, () => entry.settled = true); // takeOldest rethrows a failure
          drainedAt = submitted;
          pending.push(entry);
        }
      },
    };
  };

  const takeOldest = async () => {
    const { slot, steps, mapped } = pending.shift()!;
    try {
      await mapped;
    } catch (e) {
      await gpu.check("generating");
      throw e;
    }
    const all = new Int32Array(ring[slot].getMappedRange(0, 4 * B * steps).slice(0));
    ring[slot].unmap();
    reported += steps;
    for (let k = 0; k < steps && !done; k++) {
      const ids = Array.from(all.subarray(k * B, (k + 1) * B));
      const shown = ids.map((id, b) => {
        if (!finished[b] && options.rowSignals?.[b]?.aborted) finished[b] = true;
        if (finished[b]) return -1;
        outputs[b].push(id);
        if (id === options.eosId || outputs[b].length >= rowMax[b]) finished[b] = true;
        return id;
      });
      options.onStep?.(shown);
      if (finished.every((f) => f)) done = true;
    }
  };

  let freePrefill: (() => void) | null = null;
  try {
    const r = gpu.recorder("prefill");
    freePrefill = runner.recordPrefill(r, input.ids, input.mask, options.imageContextId, input.imageEmbeds);
    choose(r, 0).submit();
    while (!done) {
      if (options.signal?.aborted) break;
      paused ||= options.pause?.() ?? false;
      if (!paused && (ready || (submitted < maxNew && submitted - reported < inFlight))) {
        const step = ready ?? encodeDecodeStep();
        ready = null;
        // Tokens go out as soon as their readback settles (~10 ms after its map, when the event loop runs),
        // not only when the in-flight window is full: that held a response's first token back by ~8 steps.
        // Only with two steps queued since the last drain (one before a drain: a group of two), so the GPU
        // keeps work while the loop yields.
        const oldest = pending[0];
        if (oldest && submitted - drainedAt >= (step.drains ? 1 : 2)) {
          const left = oldest.mappedAt + mapSettleMs - performance.now();
          if (!oldest.settled && (step.drains || left <= 0)) {
            // A step whose map will block the thread until the GPU has run all it holds first waits for
            // the oldest readback to settle (drainWaitMs); another gives it a millisecond once due.
            await settledWithin(oldest.mapped, step.drains ? drainWaitMs : 1);
          }
          while (pending.length > 0 && pending[0].settled && !done) await takeOldest();
          if (done) break;
        }
        if (step.opens && options.between?.() === true) groupSize = Math.min(groupSize, besideWork);
        step.submit();
        continue;
      }
      if (pending.length === 0) break;
      await takeOldest();
    }
    // Steps still in flight after the stop are not waited for: their readbacks are dropped (destroying a
    // buffer rejects its pending map) and their work finishes on the GPU in queue order.
    for (const p of pending.splice(0)) p.mapped.catch(() => {});
    await gpu.check("generating");
    return outputs;
  } finally {
    freePrefill?.();
    if (owned) runner.destroy();
    next.buffer.destroy();
    seen?.buffer.destroy();
    rowSeeds?.buffer.destroy();
    for (const b of ring) b.destroy();
  }
}
