// What each part of a decode step costs inside the step: the step's GPU time (timestamp-query, as the bench's
// decode and batch sections time it) with one part's dispatches left out, against the whole step. The
// kernel profile (`deno task bench --sections kernels`) times every dispatch in a pass of its own, so each
// carries a pass's fixed cost once more (~2–10 µs on an H100); a part left out of the back-to-back step
// gives what it costs there, its dispatch boundaries included. An ablated step computes garbage (the
// consumers of a skipped part read stale buffers, LLM.int8 outlier counts may change); only its time counts.
//   deno run -A scripts/probe_ablate.ts [--tiny] [--int8-matmul MODE] [--batches 1,8] [--list] [--out FILE]
// --list prints the dispatch labels of one step (what the parts' patterns match) and stops.
import { parseArgs } from "node:util";
import { syntheticModelContext } from "../src/bench/bench_context.ts";
import { decodeRunner, timeDecode } from "../src/bench/llm_sections.ts";
import { benchShapes } from "../src/bench/shapes.ts";
import { Recorder } from "../src/gpu/recorder.ts";
import { type Int8Matmul, int8Matmuls } from "../src/model/int8_matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    tiny: { type: "boolean", default: false },
    "int8-matmul": { type: "string", default: "weight-only" },
    batches: { type: "string", default: "1,8" },
    list: { type: "boolean", default: false },
    out: { type: "string" },
  },
});
const mode = values["int8-matmul"] as Int8Matmul;
if (!int8Matmuls.includes(mode)) throw new Error(`--int8-matmul ${mode}: one of ${int8Matmuls.join(", ")}`);
const batches = values.batches.split(",").map(Number);
if (batches.some((b) => !(Number.isInteger(b) && b >= 1 && b <= 64))) {
  throw new Error(`--batches ${values.batches}: batch sizes 1..64, separated by commas`);
}
const shapes = benchShapes(values.tiny ? "tiny" : "full");
const ctx = await syntheticModelContext(shapes, mode);

/** Parts of a step, by the labels of their dispatches (--list shows them). */
const parts: [string, RegExp][] = [
  ["attention + combine", /^attention_decode/],
  ["attention combine", /^attention_decode_combine /],
  ["LLM.int8 rows scans", /^llm_int8_rows_scan /],
  ["LLM.int8 rows packs", /^llm_int8_rows_pack /],
  ["LLM.int8 rows passes", /^llm_int8_rows_/],
  // The products without their row-head reads (those are a part of their own: left out with the product
  // they feed, they would hide what the product before gains from running beside them).
  ["wqkv", /^(?!prefetch_row_heads ).*attention\.wqkv\.weight$/],
  ["wo", /^(?!prefetch_row_heads ).*attention\.wo\.weight$/],
  ["gate·up", /^(?!prefetch_row_heads ).*feed_forward\.w1\.weight$/],
  ["w2", /^(?!prefetch_row_heads ).*feed_forward\.w2\.weight$/],
  ["LM head", /^(?!prefetch_row_heads ).* language_model\.output\.weight$/],
  ["row-head reads", /^prefetch_row_heads /],
];

// Every dispatch goes through Recorder.dispatch: a part is left out there, for every step of a run.
let skip: RegExp | null = null;
let seen: Map<string, number> | null = null;
const dispatch = Recorder.prototype.dispatch;
Recorder.prototype.dispatch = function (kernel, opts) {
  const name = opts.label ?? kernel;
  const layerless = name.replace(/\.\d+\./, ".*.");
  if (seen) seen.set(layerless, (seen.get(layerless) ?? 0) + 1);
  if (skip && skip.test(name)) return;
  dispatch.call(this, kernel, opts);
};

/** Dispatch labels of one step at `batch` rows (layer numbers as *), with their counts. */
async function stepLabels(batch: number): Promise<Map<string, number>> {
  const d = await decodeRunner(ctx, batch, shapes.decodeContexts[0], 4);
  seen = new Map();
  const r = ctx.gpu.recorder("labels");
  d.step(r);
  r.submit();
  await ctx.gpu.sync("listing a step's dispatches");
  const labels = seen;
  seen = null;
  d.destroy();
  return labels;
}

if (values.list) {
  for (const [name, n] of await stepLabels(batches[0])) console.log(`${String(n).padStart(4)}  ${name}`);
  Deno.exit(0);
}

const context = shapes.decodeContexts[0];
const results: Record<string, Record<string, number | null>> = {};
for (const batch of batches) {
  const row: Record<string, number | null> = {};
  const time = async (pattern: RegExp | null) => {
    skip = pattern;
    const r = await timeDecode(ctx, batch, context);
    skip = null;
    return r.gpu_busy_ms_median as number;
  };
  // The whole step before and after the parts: their mean is the base, their difference the drift.
  const before = await time(null);
  // Parts with no dispatch in this mode (the rows passes weight-only) are left out.
  const labels = [...(await stepLabels(batch)).keys()];
  const present = parts.filter(([, pattern]) => labels.some((l) => pattern.test(l)));
  const without: number[] = [];
  for (const [, pattern] of present) without.push(await time(pattern));
  const after = await time(null);
  const whole = (before + after) / 2;
  row["whole step"] = whole;
  row["whole step drift"] = Math.round((after - before) * 1000) / 1000;
  console.log(
    `batch ${batch}, ctx ${context} (${mode}): whole step ${before.toFixed(3)} / ${
      after.toFixed(3)
    } ms of GPU`,
  );
  present.forEach(([name], i) => {
    row[name] = Math.round((whole - without[i]) * 1000) / 1000;
    console.log(
      `  ${name.padEnd(22)} ${(whole - without[i]).toFixed(3)} ms a step (without it ${
        without[i].toFixed(3)
      })`,
    );
  });
  results[`b${batch}_ctx${context}`] = row;
}
if (values.out) {
  const card = ctx.gpu.adapterDescription;
  await Deno.writeTextFile(
    values.out,
    JSON.stringify({ card, date: new Date().toISOString().slice(0, 10), mode, results }, null, 2),
  );
}
ctx.gpu.destroy();
