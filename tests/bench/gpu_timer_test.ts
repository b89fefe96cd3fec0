import assert from "node:assert/strict";
import { Gpu } from "../../src/gpu/device.ts";
import { GpuTimer, joinSplitPasses, median, stepTimes, timeRepeated } from "../../src/bench/gpu_timer.ts";
import { fillRandom } from "../../src/ops/fill_random.ts";

let shared: Promise<Gpu> | null = null;
function benchGpu(): Promise<Gpu> {
  if (!shared) {
    shared = Gpu.create();
    // Tearing down a live device at process exit sometimes crashes Mesa's llvmpipe; destroy it first.
    shared.then((gpu) => globalThis.addEventListener("unload", () => gpu.destroy()));
  }
  return shared;
}

Deno.test("GpuTimer stamps every Recorder pass in order and counts submits and dispatches", async () => {
  const gpu = await benchGpu();
  const timer = GpuTimer.install(gpu);
  if (!timer.hasTimestamps) return; // the adapter lacks timestamp-query: covered by the wall-clock test
  const t = gpu.createTensor("timer.x", "f32", [1 << 20]);
  timer.resetCounts();
  timer.start("fills");
  for (let i = 0; i < 3; i++) {
    const r = gpu.recorder(`timer.${i}`);
    fillRandom(r, t, { seed: i });
    fillRandom(r, t, { seed: i + 100 });
    r.submit();
  }
  const stamps = await timer.collect();
  assert.equal(stamps.length, 3);
  assert.deepEqual([timer.submits, timer.passes, timer.dispatches], [3, 3, 6]);
  for (let i = 0; i < stamps.length; i++) {
    assert.equal(stamps[i].label, "fills");
    assert.ok(stamps[i].endNs > stamps[i].beginNs, `pass ${i} has no duration`);
    if (i > 0) {
      assert.ok(stamps[i].beginNs >= stamps[i - 1].endNs, `pass ${i} began before pass ${i - 1} ended`);
    }
  }
  // Not recording: passes run unstamped.
  const r = gpu.recorder("unstamped");
  fillRandom(r, t, { seed: 1 });
  r.submit();
  assert.deepEqual(await timer.collect(), []);
  t.buffer.destroy();
});

Deno.test("GpuTimer keeps each pass's own label: a step encoded with a first part runs as two passes", async () => {
  const gpu = await benchGpu();
  const timer = GpuTimer.install(gpu);
  if (!timer.hasTimestamps) return;
  const t = gpu.createTensor("timer.w", "f32", [4097]);
  timer.resetCounts();
  timer.start("split");
  const step = gpu.recorder("step");
  for (let i = 0; i < 3; i++) fillRandom(step, t, { seed: i });
  step.encode({ firstPart: 1 })();
  const whole = gpu.recorder("whole"); // a first part of all its dispatches: nothing left to split off
  fillRandom(whole, t, { seed: 9 });
  whole.encode({ firstPart: 1 })();
  const stamps = await timer.collect();
  assert.deepEqual(stamps.map((s) => s.pass), ["step.first", "step", "whole"]);
  assert.deepEqual([timer.submits, timer.passes, timer.dispatches], [3, 3, 4]);
  assert.ok(stamps[1].beginNs >= stamps[0].endNs, "the rest began before the first part ended");
  const joined = joinSplitPasses(stamps);
  assert.deepEqual(joined.map((s) => [s.pass, s.split]), [["step", true], ["whole", false]]);
  assert.equal(joined[0].beginNs, stamps[0].beginNs);
  t.buffer.destroy();
});

Deno.test("joinSplitPasses joins each first part with the pass after it, the time between them idle", () => {
  const s = (pass: string, beginNs: number, endNs: number) => ({ label: "x", pass, beginNs, endNs });
  const joined = joinSplitPasses([
    s("prefill", 0, 1e6),
    s("decode.first", 2e6, 3e6),
    s("decode", 3.25e6, 5e6),
    s("decode", 5.5e6, 6e6),
    s("decode.first", 7e6, 8e6), // its rest never stamped: a step of its own
  ]);
  assert.deepEqual(
    joined.map((j) => [j.pass, j.beginNs, j.endNs, j.split, j.innerIdleMs]),
    [
      ["prefill", 0, 1e6, false, 0],
      ["decode", 2e6, 5e6, true, 0.25],
      ["decode", 5.5e6, 6e6, false, 0],
      ["decode.first", 7e6, 8e6, false, 0],
    ],
  );
});

Deno.test("GpuTimer.collect returns only submitted passes: one encoded ahead and dropped does not count", async () => {
  const gpu = await benchGpu();
  const timer = GpuTimer.install(gpu);
  if (!timer.hasTimestamps) return;
  const t = gpu.createTensor("timer.y", "f32", [4099]);
  // A pass labelled `label`, encoded now; the returned function submits it.
  const pass = (label: string, seed: number) => {
    timer.label(label);
    const r = gpu.recorder(label);
    fillRandom(r, t, { seed });
    return r.encode();
  };
  timer.resetCounts();
  timer.start("first");
  pass("first", 1)();
  const late = pass("dropped", 2); // encoded as generate() encodes its next step, not submitted in this cycle
  pass("last", 3)();
  const stamps = await timer.collect();
  assert.deepEqual(stamps.map((s) => s.label), ["first", "last"]);
  assert.ok(stamps[1].beginNs >= stamps[0].endNs);
  assert.deepEqual([timer.submits, timer.passes], [2, 3], "the timer's own passes are not counted");
  // The next cycle starts clean: the last cycle's dropped pass (its index 1) submitted now does not count
  // for this cycle's pass at index 1, dropped too.
  timer.start("next");
  pass("next", 4)();
  pass("dropped again", 5);
  late();
  assert.deepEqual((await timer.collect()).map((s) => s.label), ["next"]);
  t.buffer.destroy();
});

Deno.test("timeRepeated reports per-repetition GPU spans, busy time and gaps", async () => {
  const gpu = await benchGpu();
  const timer = GpuTimer.install(gpu);
  const t = gpu.createTensor("timer.y", "f32", [1 << 18]);
  const res = await timeRepeated(timer, "fill", () => {
    const r = gpu.recorder("fill");
    fillRandom(r, t, { seed: 3 });
    r.submit();
  }, { reps: 5, minWallMs: 50 });
  assert.equal(res.method, timer.method);
  assert.ok(res.msPerRep > 0 && Number.isFinite(res.msPerRep));
  if (timer.hasTimestamps) {
    assert.equal(res.times!.spanMs.length, 5);
    assert.equal(res.times!.gapMs.length, 4);
    assert.ok(res.times!.gapMs.every((g) => g >= 0));
  }
  t.buffer.destroy();
});

Deno.test("the wall-clock fallback repeats until the batch is long enough", async () => {
  const gpu = await Gpu.create();
  try {
    const timer = GpuTimer.install(gpu, true);
    assert.equal(timer.method, "wall-clock");
    const t = gpu.createTensor("timer.z", "f32", [1024]);
    let runs = 0;
    const res = await timeRepeated(timer, "tiny", () => {
      runs++;
      const r = gpu.recorder("tiny");
      fillRandom(r, t, { seed: 1 });
      r.submit();
    }, { reps: 2, warmup: 1, minWallMs: 60, maxReps: 50 });
    assert.equal(res.times, null);
    assert.ok(res.reps >= 2 && res.reps <= 50);
    assert.equal(runs, 1 + 2 + (res.reps === 2 ? 0 : res.reps));
  } finally {
    gpu.destroy();
  }
});

Deno.test("stepTimes splits stamps into repetitions with spans, busy time and idle gaps", () => {
  const s = (beginNs: number, endNs: number) => ({ label: "x", pass: "", beginNs, endNs });
  // rep 0: two passes [0,1ms] [1.5,2ms]; rep 1: [3,4ms]
  const t = stepTimes([s(0, 1e6), s(1.5e6, 2e6), s(3e6, 4e6)], [0, 2]);
  assert.deepEqual(t.spanMs, [2, 1]);
  assert.deepEqual(t.busyMs, [1.5, 1]);
  assert.deepEqual(t.gapMs, [1]);
  assert.equal(t.throughputMs, 2);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});
