// The CPU time of a short prompt pass (a follow-up round's new tokens, `LmRunner.recordPrefill`), recorded and
// encoded but never submitted, so only the CPU's part is timed: building the dispatches (the launchers), the
// bind groups (`createBindGroup`) and the rest of `Recorder.encode` (pipeline lookups, pass commands). Such a
// pass binds fresh scratch, so none of its bind groups come from a dispatch cache: on the H200 host recording
// a 31-token `llm-int8` pass took longer than its GPU time (PERF.md v56). A model of the real layer count and
// tiny widths, so it runs on any adapter: the CPU side depends on the dispatches, not on their sizes.
//   deno run -A scripts/probe_prompt_cpu.ts [--layers 48] [--tokens 31] [--passes 10]
//                                           [--int8-matmul weight-only,llm-int8,llm-int8-prefill]
import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/device.ts";
import { syntheticTinyWidthLanguage } from "../src/bench/synthetic_weights.ts";
import { LmRunner } from "../src/model/lm_runner.ts";
import { type Int8Matmul, int8Matmuls } from "../src/model/int8_matmul.ts";
import { languageGemmPool } from "../src/model/language.ts";
import { llmInt8Threshold } from "../src/ops/llm_int8.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    layers: { type: "string", default: "48" },
    tokens: { type: "string", default: "31" },
    passes: { type: "string", default: "10" },
    "int8-matmul": { type: "string", default: int8Matmuls.join(",") },
  },
});
const [layers, tokens, passes] = [values.layers, values.tokens, values.passes].map(Number);
const modes = values["int8-matmul"].split(",") as Int8Matmul[];
for (const m of modes) {
  if (!int8Matmuls.includes(m)) throw new Error(`--int8-matmul ${m}: use ${int8Matmuls.join(", ")}`);
}
if (!(tokens >= 1 && passes >= 1 && layers >= 1)) {
  throw new Error("--layers, --tokens, --passes: give counts ≥ 1");
}

const gpu = await Gpu.create();
const { dims, weights } = await syntheticTinyWidthLanguage(gpu, layers);

// createBindGroup timed where every bind group is made.
let bindGroupMs = 0, bindGroups = 0;
const device = gpu.device;
const createBindGroup = device.createBindGroup.bind(device);
device.createBindGroup = (d: GPUBindGroupDescriptor) => {
  const t = performance.now();
  const g = createBindGroup(d);
  bindGroupMs += performance.now() - t;
  bindGroups++;
  return g;
};
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const ids = Array.from({ length: tokens }, (_, i) => 100 + i);
const imageContextId = -1; // no image rows

for (const mode of modes) {
  const pool = languageGemmPool(gpu, dims);
  const runner = new LmRunner(gpu, weights, dims, 1, tokens + 1, { mode, threshold: llmInt8Threshold }, pool);
  const record: number[] = [], bind: number[] = [], rest: number[] = [];
  let dispatches = 0;
  for (let p = 0; p <= passes; p++) {
    const r = gpu.recorder("probe.prompt");
    let encodeMs = 0;
    dispatches = 0;
    bindGroupMs = 0;
    bindGroups = 0;
    // The pass submits its parts itself: each part is encoded here instead, its commands dropped.
    r.submit = () => {
      dispatches += r.size;
      const t = performance.now();
      r.encode();
      encodeMs += performance.now() - t;
    };
    const t0 = performance.now();
    const free = runner.recordPrefill(r, [ids], [ids.map(() => 1)], imageContextId, null);
    r.submit();
    const total = performance.now() - t0;
    free();
    runner.truncate(0);
    if (p === 0) continue; // the first pass builds the pipelines
    record.push(total - encodeMs);
    bind.push(bindGroupMs);
    rest.push(encodeMs - bindGroupMs);
  }
  const [rec, bg, other] = [record, bind, rest].map(median);
  console.log(
    `${mode}, ${tokens} tokens, ${layers} layers: ${dispatches} dispatches (${bindGroups} bind groups), ` +
      `${(rec + bg + other).toFixed(1)} ms of CPU a pass: record ${rec.toFixed(1)}, createBindGroup ` +
      `${bg.toFixed(1)} (${(bg / bindGroups * 1000).toFixed(1)} µs each), rest of encode ${
        other.toFixed(1)
      }; ` +
      `adapter ${gpu.adapterDescription}`,
  );
  runner.destroy();
  pool.destroy();
}
gpu.destroy();
