// The CPU time of a short prompt pass (a follow-up round's new tokens, `LmRunner.recordPrefill`), recorded and
// encoded but never submitted, so only the CPU's part is timed: building the dispatches (the launchers), the
// bind groups (`createBindGroup`) and the rest of `Recorder.encode` (pipeline lookups, pass commands). Each
// pass continues a fresh runner's kept positions, as a follow-up round does, with the model's kept prompt
// scratch (`--kept on`: PromptScratchPool, whose dispatch caches give every bind group but those of the
// runner's own buffers; the first pass fills it, as the warm-up does) or fresh scratch for every pass
// (`--kept off`, the engine before PERF.md v57: on the H200 host recording a 31-token `llm-int8` pass took
// longer than its GPU time, v56). A model of the real layer count and tiny widths, so it runs on any adapter:
// the CPU side depends on the dispatches, not on their sizes.
//   deno run -A scripts/probe_prompt_cpu.ts [--layers 48] [--tokens 31] [--passes 10] [--kept off,on]
//                                           [--int8-matmul weight-only,llm-int8,llm-int8-prefill,llm-int8-batched]
import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/device.ts";
import { syntheticTinyWidthLanguage } from "../src/bench/synthetic_weights.ts";
import { LmRunner } from "../src/model/lm_runner.ts";
import { type Int8Matmul, int8Matmuls } from "../src/model/int8_matmul.ts";
import { languageGemmPool } from "../src/model/language.ts";
import { llmInt8Threshold } from "../src/ops/llm_int8.ts";
import { PromptScratchPool } from "../src/model/prompt_scratch_pool.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    layers: { type: "string", default: "48" },
    tokens: { type: "string", default: "31" },
    passes: { type: "string", default: "10" },
    "int8-matmul": { type: "string", default: int8Matmuls.join(",") },
    kept: { type: "string", default: "off,on" },
  },
});
const [layers, tokens, passes] = [values.layers, values.tokens, values.passes].map(Number);
const modes = values["int8-matmul"].split(",") as Int8Matmul[];
for (const m of modes) {
  if (!int8Matmuls.includes(m)) throw new Error(`--int8-matmul ${m}: use ${int8Matmuls.join(", ")}`);
}
const keptSettings = values.kept.split(",");
if (keptSettings.some((k) => k !== "on" && k !== "off")) throw new Error("--kept: give on, off or both");
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

// The positions a follow-up round continues (never computed: the passes are not submitted).
const keptPositions = 40;

for (const mode of modes) {
  for (const kept of keptSettings) {
    const matmul = { mode, threshold: llmInt8Threshold };
    const gemmPool = languageGemmPool(gpu, dims);
    const promptPool = kept === "on" ? new PromptScratchPool(gpu, dims, matmul, gemmPool) : null;
    const record: number[] = [], bind: number[] = [], rest: number[] = [], made: number[] = [];
    let dispatches = 0;
    for (let p = 0; p <= passes; p++) {
      const runner = new LmRunner(
        gpu,
        weights,
        dims,
        1,
        keptPositions + tokens,
        matmul,
        gemmPool,
        "f32",
        promptPool,
      );
      runner.cache.length = keptPositions; // as if a round had filled them
      runner.truncate(keptPositions); // the next positions follow them
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
      runner.destroy();
      if (p === 0) continue; // the first pass builds the pipelines (and fills the kept scratch's caches)
      record.push(total - encodeMs);
      bind.push(bindGroupMs);
      rest.push(encodeMs - bindGroupMs);
      made.push(bindGroups);
    }
    const [rec, bg, other] = [record, bind, rest].map(median);
    const groups = median(made);
    console.log(
      `${mode}, kept scratch ${kept}, ${tokens} tokens after ${keptPositions}, ${layers} layers: ${dispatches} ` +
        `dispatches (${groups} bind groups made), ${
          (rec + bg + other).toFixed(1)
        } ms of CPU a pass: record ` +
        `${rec.toFixed(1)}, createBindGroup ${bg.toFixed(1)}${
          groups ? ` (${(bg / groups * 1000).toFixed(1)} µs each)` : ""
        }, rest of encode ${other.toFixed(1)}; adapter ${gpu.adapterDescription}`,
    );
    promptPool?.destroy();
    gemmPool.destroy();
  }
}
gpu.destroy();
