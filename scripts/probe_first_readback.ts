// When the prompt's readback settles while decode steps queue behind it, without the model: generate()'s
// first readback group on an H200 left the GPU idle 10–46 ms in 13 of 21 runs, because the prompt's readback
// settled 36–50 ms after its map call returned instead of ~14 (docs/PERF.md v73). This replays that pattern
// with plain dispatches: one long "prompt" dispatch and a copy into a readback, then its map (which blocks
// until the queue is empty), then "steps" of about --step-ms each, submitted with 3 ms of CPU between them
// (a step's recording) and, once the map is 10 ms old, a 1 ms timer raced against the map's promise (as
// generate() gives it). Each line: when the promise settled after the map call returned, and every wait's
// length (a 1 ms wait that takes 9 means the runtime held the thread, e.g. polling the device again).
//   deno run -A scripts/probe_first_readback.ts [--reps 8] [--step-ms 7.5] [--prompt-ms 450] [--steps 8]
//     [--variants loop,idle,yield-first]
// Variants: loop (as generate() does it), idle (no steps: just await the map), yield-first (one message turn
// of the event loop right after the map returns, before the first step's submit).
import { parseArgs } from "node:util";
import { settledWithin } from "../src/engine/generate.ts";
import { BusyDispatch } from "./busy_dispatch.ts";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "8" },
    "step-ms": { type: "string", default: "7.5" },
    "prompt-ms": { type: "string", default: "450" },
    steps: { type: "string", default: "8" },
    variants: { type: "string", default: "loop,idle,yield-first" },
  },
});
const reps = Number(values.reps), stepMs = Number(values["step-ms"]);
const promptMs = Number(values["prompt-ms"]), stepCount = Number(values.steps);
const variants = values.variants.split(",");
if (!(reps > 0 && stepMs > 0 && promptMs > 0 && stepCount > 0)) throw new Error("bad numeric option");
for (const v of variants) {
  if (!["loop", "idle", "yield-first"].includes(v)) throw new Error(`unknown variant ${v}`);
}

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const busy = new BusyDispatch(device);
const readbacks = [0, 1].map(() =>
  device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
);
// The map call blocks until the queue is empty, so its length is the GPU time of what was queued.
const gpuMs = async (rounds: number) => {
  device.queue.submit([busy.encode(rounds, readbacks[0])]);
  const t0 = performance.now();
  const p = readbacks[0].mapAsync(GPUMapMode.READ);
  const ms = performance.now() - t0;
  await p;
  readbacks[0].unmap();
  return ms;
};
await gpuMs(1000);
const perRound = (await gpuMs(2_000_000)) / 2_000_000;
const stepRounds = Math.round(stepMs / perRound), promptRounds = Math.round(promptMs / perRound);
console.log(
  `adapter: ${adapter.info.description || adapter.info.vendor}; a step ${
    (await gpuMs(stepRounds)).toFixed(2)
  } ms, ` +
    `the prompt ${(await gpuMs(promptRounds)).toFixed(1)} ms (map-call times)`,
);

const spin = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
const channel = new MessageChannel();
let onMessage: (() => void) | null = null;
channel.port1.onmessage = () => onMessage?.();
const turn = () => new Promise<void>((r) => (onMessage = r, channel.port2.postMessage(0)));

for (let rep = 0; rep < reps; rep++) {
  for (const variant of variants) {
    const rb = readbacks[rep % 2];
    device.queue.submit([busy.encode(promptRounds, rb)]);
    const first = busy.encode(stepRounds);
    spin(3);
    const c0 = performance.now();
    const mapped = rb.mapAsync(GPUMapMode.READ);
    const mappedAt = performance.now();
    let settledAt = NaN;
    mapped.then(() => settledAt = performance.now() - mappedAt);
    const waits: string[] = [];
    if (variant === "yield-first") await turn();
    if (variant !== "idle") {
      let next: GPUCommandBuffer | null = first;
      for (let s = 0; s < stepCount; s++) {
        device.queue.submit([next ?? busy.encode(stepRounds)]);
        next = null;
        spin(3);
        if (Number.isNaN(settledAt) && performance.now() - mappedAt >= 10) {
          const w0 = performance.now();
          await settledWithin(mapped, 1);
          waits.push(`${(w0 - mappedAt).toFixed(1)}+${(performance.now() - w0).toFixed(1)}`);
        }
      }
    }
    const w0 = performance.now();
    await mapped;
    const lastWait = performance.now() - w0;
    rb.unmap();
    // Let the steps run out before the next rep.
    const drain = readbacks[(rep + 1) % 2];
    device.queue.submit([busy.encode(1000, drain)]);
    await drain.mapAsync(GPUMapMode.READ);
    drain.unmap();
    console.log(
      `rep ${rep} ${variant}: map call ${(mappedAt - c0).toFixed(1)} ms, settled ${
        settledAt.toFixed(1)
      } ms ` +
        `after it returned; waits (ms after the map + length) [${waits.join(" ")}], final await ` +
        `${lastWait.toFixed(1)}`,
    );
  }
}
channel.port1.close();
