// The CPU time to record and encode one decode step (`LmRunner.recordDecode` + `Recorder.encode`, bind groups
// cached as generate() keeps them), for a model with the real layer count and tiny widths, so it runs on any
// adapter: the CPU side of a step depends on its dispatches, not on their sizes. Medians over the steps, with
// the row-head prefetch off and on (src/ops/prefetch_row_heads.ts).
//   deno run -A scripts/probe_record_cpu.ts [--layers 48] [--steps 200] [--batch 1]
import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/device.ts";
import { syntheticTinyWidthLanguage } from "../src/bench/synthetic_weights.ts";
import { LmRunner } from "../src/model/lm_runner.ts";
import {
  copyRowHeadPrefetch,
  describeRowHeadPrefetch,
  parseRowHeadPrefetch,
  rowHeadPrefetch,
} from "../src/ops/prefetch_row_heads.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    layers: { type: "string", default: "48" },
    steps: { type: "string", default: "200" },
    batch: { type: "string", default: "1" },
  },
});
const [layers, steps, batch] = [values.layers, values.steps, values.batch].map(Number);
const gpu = await Gpu.create();
const { dims, weights } = await syntheticTinyWidthLanguage(gpu, layers);
const ids = gpu.createTensor("ids", "i32", [batch]);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const defaults = copyRowHeadPrefetch(rowHeadPrefetch);
for (const setting of [parseRowHeadPrefetch("off"), defaults]) {
  Object.assign(rowHeadPrefetch, setting);
  const runner = new LmRunner(gpu, weights, dims, batch, 600);
  const record: number[] = [], total: number[] = [];
  let dispatches = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const r = gpu.recorder("step", runner.decodeCache);
    runner.recordDecode(r, ids);
    dispatches = r.size;
    const t1 = performance.now();
    const submit = r.encode();
    total.push(performance.now() - t0);
    record.push(t1 - t0);
    submit();
    if (s % 10 === 9) await gpu.sync("steps");
  }
  console.log(
    `row heads ${describeRowHeadPrefetch(setting)}: ` +
      `${dispatches} dispatches, record + encode ${median(total).toFixed(2)} ms a step ` +
      `(record ${median(record).toFixed(2)}), adapter ${gpu.adapterDescription}`,
  );
  runner.destroy();
}
Object.assign(rowHeadPrefetch, defaults);
gpu.destroy();
