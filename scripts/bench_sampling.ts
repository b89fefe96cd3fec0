// Times the token choice at the end of every decode step on the InternLM2 vocabulary (92553): argmax
// (greedy) and sample_token (temperature → top-k → top-p → Gumbel draw) with the option sets a chat client
// sends, at 1 and 8 rows. GPU timestamps around passes of D back-to-back calls.
//   deno run -A scripts/bench_sampling.ts [--quick] [--ms 200] [--out sampling.json]
import { argmax } from "../src/ops/argmax.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { sampleToken, type SamplingOptions } from "../src/ops/sample_token.ts";
import type { Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();

const V = quick ? 3001 : 92553;
const D = quick ? 2 : 50;
type Choose = (r: Recorder, logits: Tensor, ids: Tensor) => void;
const sampled: [string, Omit<SamplingOptions, "seed" | "step">][] = [
  ["temperature 0.7", { temperature: 0.7, topK: 0, topP: 1 }],
  ["top_p 0.8", { temperature: 0.7, topK: 0, topP: 0.8 }],
  ["top_k 50, top_p 0.8", { temperature: 0.7, topK: 50, topP: 0.8 }],
];
const choices: [string, Choose][] = [
  ["argmax", (r, logits, ids) => argmax(r, logits, ids)],
  ...sampled.map(([name, o]): [string, Choose] => [
    `sample ${name}`,
    (r, logits, ids) => sampleToken(r, logits, ids, { ...o, seed: 1, step: 0 }),
  ]),
];
let logitsT = gpu.createTensor("sampling.logits", "f32", [1, V]);
let idsT = gpu.createTensor("sampling.ids", "i32", [1]);
const rows: { batch: number; choice: string; us: number }[] = [];
for (const B of [1, 8]) {
  logitsT.buffer.destroy();
  idsT.buffer.destroy();
  logitsT = gpu.createTensor(`sampling.logits${B}`, "f32", [B, V]);
  idsT = gpu.createTensor(`sampling.ids${B}`, "i32", [B]);
  sweep.launchOnce(gpu, "fill", (r) => fillRandom(r, logitsT, { seed: B, lo: -12, hi: 12 }));
  for (const [name, record] of choices) {
    const run = () => {
      const r = gpu.recorder(`sampling ${name}`);
      for (let d = 0; d < D; d++) record(r, logitsT, idsT);
      r.submit();
    };
    run();
    await gpu.sync(`warming up ${name}`);
    const passes = quick ? 2 : Math.max(5, Math.ceil(minMs / 5));
    const t = await sweep.timePasses(gpu, timer, `sampling ${name}`, run, D, passes, true);
    rows.push({ batch: B, choice: name, us: t.ms * 1e3 });
    console.log(`B=${B} V=${V} ${name.padEnd(26)} ${(t.ms * 1e3).toFixed(1).padStart(8)} µs per call`);
  }
}
await sweep.writeJson(out, "sampling.json", { adapter: gpu.adapterDescription, vocab: V, rows }, true);
gpu.destroy();
