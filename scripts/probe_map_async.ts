// Where Deno's mapAsync waits: submits one long dispatch (tens of ms on llvmpipe, a few on a GPU), then
// times the mapAsync CALL and the await of its promise separately. Deno 2.9.6 polls the device until all
// submitted work has run inside the call (ext/webgpu/buffer.rs: device_poll(wait_indefinitely), then a
// 10 ms sleep before the promise settles), which is why generate() encodes its next step before it maps a
// readback and submits it right after (src/engine/generate.ts, docs/PERF.md v26). Then, with 3 ms of CPU
// work a step standing in for recording, when the promise settles if the thread yields to the event loop
// between steps not at all, by a message (a bare turn) or by a 1 ms timer: Deno's sleep is a runtime timer,
// fired while the event loop waits for the next timer (why generate() waits on a timer, v26b). Last, with
// --queued N more dispatches submitted right after the map call returns (the steps generate() queues behind a
// readback): how long those submits take, when the promise settles, and how long the thread is held meanwhile
// (PERF.md v73: on a GPU the prompt's readback settled 36–50 ms after its map in some runs; on llvmpipe the
// submits themselves block until earlier work has run, so there this part shows only that).
//   deno run -A scripts/probe_map_async.ts [--rounds 200000] [--reps 3] [--queued 4]
import { parseArgs } from "node:util";
import { settledWithin } from "../src/engine/generate.ts";
import { BusyDispatch } from "./busy_dispatch.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "200000" },
    reps: { type: "string", default: "3" },
    queued: { type: "string", default: "4" },
  },
});
const rounds = Number(values.rounds), reps = Number(values.reps), queued = Number(values.queued);
if (![rounds, reps, queued].every((n) => Number.isInteger(n) && n > 0)) {
  throw new Error("--rounds, --reps and --queued take positive integers");
}

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const busy = new BusyDispatch(device);
const readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
console.log(`adapter: ${adapter.info.description || adapter.info.vendor}; ${rounds} rounds a thread`);
// One dispatch of `rounds` and a copy into `into` (when given), submitted.
const submitLong = (into?: GPUBuffer) => device.queue.submit([busy.encode(rounds, into)]);
for (let rep = 0; rep < reps; rep++) {
  submitLong(readback);
  const t0 = performance.now();
  const mapped = readback.mapAsync(GPUMapMode.READ);
  const t1 = performance.now();
  await mapped;
  const t2 = performance.now();
  readback.unmap();
  console.log(
    `mapAsync call ${(t1 - t0).toFixed(1)} ms (blocking), then its await ${(t2 - t1).toFixed(1)} ms`,
  );
}

const channel = new MessageChannel();
let onMessage: (() => void) | null = null;
channel.port1.onmessage = () => onMessage?.();
const yields: [string, (() => Promise<void>) | null][] = [
  ["no yield", null],
  ["a message (one turn)", () => new Promise<void>((r) => (onMessage = r, channel.port2.postMessage(0)))],
  ["a 1 ms timer", () => new Promise<void>((r) => setTimeout(r, 1))],
];
const source = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC });
for (const [name, yieldOnce] of yields) {
  for (let rep = 0; rep < reps; rep++) {
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(source, 0, readback, 0, 16);
    device.queue.submit([enc.finish()]);
    const t0 = performance.now();
    let settledAt = NaN;
    const mapped = readback.mapAsync(GPUMapMode.READ).then(() => settledAt = performance.now() - t0);
    let steps = 0;
    for (; Number.isNaN(settledAt) && steps < 40; steps++) {
      const until = performance.now() + 3;
      while (performance.now() < until); // a step's recording
      if (yieldOnce) await yieldOnce();
    }
    await mapped;
    readback.unmap();
    console.log(
      `${name}: settled ${settledAt.toFixed(1)} ms after the call, seen after ${steps} steps of 3 ms`,
    );
  }
}
channel.port1.close();

const later = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
for (let rep = 0; rep < reps; rep++) {
  // One dispatch's time: its map call blocks until it has run.
  submitLong(later);
  const q0 = performance.now();
  const drained = later.mapAsync(GPUMapMode.READ);
  const oneMs = performance.now() - q0;
  await drained;
  later.unmap();
  submitLong(readback);
  const mapped = readback.mapAsync(GPUMapMode.READ); // blocks until that dispatch has run
  const t0 = performance.now();
  let settledAt = NaN;
  mapped.then(() => settledAt = performance.now() - t0);
  for (let q = 0; q < queued; q++) submitLong(); // the steps queued behind a readback
  const submitsMs = performance.now() - t0;
  const until = performance.now() + 3;
  while (performance.now() < until); // a step's recording
  const w0 = performance.now();
  await settledWithin(mapped, 1);
  const waited = performance.now() - w0;
  // Until it settles, a 1 ms interval: the longest time between its ticks is how long the thread was held.
  let last = performance.now(), held = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    held = Math.max(held, now - last);
    last = now;
  }, 1);
  await mapped;
  clearInterval(ticker);
  held = Math.max(held, performance.now() - last);
  readback.unmap();
  console.log(
    `${queued} dispatches of ${oneMs.toFixed(1)} ms queued after the map (their submits took ` +
      `${submitsMs.toFixed(1)} ms): a 1 ms wait took ` +
      `${waited.toFixed(1)} ms; settled ${settledAt.toFixed(1)} ms after the map call returned; ` +
      `the thread held up to ${held.toFixed(1)} ms at a time meanwhile`,
  );
}
