// Whether a server's first round of each kind compiles anything after `warmUp` (as WebGpuEngine.load runs
// it): a model of the real V1.5 shapes from GPU-random int8 weights (--tiny: the bench's tiny shapes), then
// rounds of text at 1, 3, 5, 8, 9, 12, 14 and 20 rows (greedy and sampled), a long prompt, a follow-up round
// on a kept cache, beam search, image encodes of 7 and 13 tiles and rounds with images, each run twice.
// Reports the pipelines each first run asked for that the warm-up had not (with their build time on this
// thread) and the wall time of both runs. Pipelines, not timing, are what the warm-up test checks
// (tests/model/language_test.ts); at the tiny vocab some tilings of the real shapes never appear, so this
// probe is the check at the real ones (PERF.md v55). With --tiny the 7-tile encode builds one f32 GEMM tiling
// the warm-up's single tile does not (a tiny tile has ≤ 64 rows; a real one 1025).
//   deno run -A --unstable-kv scripts/probe_first_rounds.ts [--int8-matmul MODE] [--tiny] [--out FILE]
import { parseArgs } from "node:util";
import { BenchContext, Budget, type Json } from "../src/bench/bench_context.ts";
import { benchShapes } from "../src/bench/shapes.ts";
import { generate } from "../src/engine/generate.ts";
import { beamSearch } from "../src/engine/beam_search.ts";
import { defaultGenerationConfig } from "../src/engine/types.ts";
import { type Int8Matmul, int8Matmuls } from "../src/model/int8_matmul.ts";

const { values } = parseArgs({
  options: {
    "int8-matmul": { type: "string", default: "weight-only" },
    tiny: { type: "boolean", default: false },
    out: { type: "string" },
  },
});
const mode = values["int8-matmul"] as Int8Matmul;
if (!int8Matmuls.includes(mode)) throw new Error(`--int8-matmul ${mode}: use ${int8Matmuls.join(" or ")}`);
const shapes = benchShapes(values.tiny ? "tiny" : "full");
const ctx = new BenchContext(shapes, new Budget(3_600_000), {
  forceWallClock: false,
  modelDir: null,
  seed: 1,
  int8Matmul: mode,
  kvCacheDtype: "f32",
  log: () => {},
});
await ctx.init();
const { model } = await ctx.model();
const gpu = model.gpu;
// Every pipeline asked for (name and constants), with the time its first request took.
const asked = new Map<string, number>();
const build = gpu.pipeline.bind(gpu);
gpu.pipeline = (name: string, constants: Record<string, number> = {}) => {
  const t0 = performance.now();
  const pipeline = build(name, constants);
  const key = name + JSON.stringify(constants);
  if (!asked.has(key)) asked.set(key, performance.now() - t0);
  return pipeline;
};
const t0 = performance.now();
await model.warmUp();
const warmUpMs = performance.now() - t0;
console.log(`${gpu.adapterDescription}, ${mode}: warmUp ${warmUpMs.toFixed(0)} ms, ${asked.size} pipelines`);
const known = new Set(asked.keys());
const result: Record<string, Json> = {
  adapter: gpu.adapterDescription,
  int8_matmul: mode,
  scale: shapes.scale,
  warm_up_ms: Math.round(warmUpMs),
  warm_up_pipelines: asked.size,
};

/** Runs `f` twice: the first run's new pipelines and both runs' wall time. */
async function round(what: string, f: () => Promise<unknown>) {
  const ms: number[] = [];
  let fresh: string[] = [];
  for (let i = 0; i < 2; i++) {
    asked.clear();
    const t = performance.now();
    await f();
    ms.push(performance.now() - t);
    const built = [...asked.entries()].filter(([key]) => !known.has(key));
    if (i === 0) fresh = built.map(([key, at]) => `${key} ${at.toFixed(1)} ms`);
    for (const [key] of built) known.add(key);
  }
  const row = { first_ms: Math.round(ms[0]), second_ms: Math.round(ms[1]), new_pipelines: fresh };
  result[what] = row;
  console.log(what, JSON.stringify(row));
}

const img = shapes.imageContextId, V = shapes.language.vocab;
const tokens = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => (i * 7919 + seed * 131 + 11) % V).map((id) => id === img ? id - 1 : id);
const text = (B: number, n: number) => {
  const ids = Array.from({ length: B }, (_, b) => tokens(n, b));
  return { ids, mask: ids.map((row) => row.map(() => 1)), imageEmbeds: null };
};
const greedy = { ...defaultGenerationConfig, maxNewTokens: 8 };
const sampled = { ...greedy, doSample: true, temperature: 0.7, topK: 50, topP: 0.9, repetitionPenalty: 1.1 };
const opts = { eosId: -1, imageContextId: img };
const S = shapes.vision.imageSize, perTile = model.tokensPerTile;
const pixels = (tiles: number) => {
  const p = new Float32Array(tiles * 3 * S * S);
  for (let i = 0; i < p.length; i++) p[i] = ((i * 2654435761) % 1000) / 500 - 1;
  return p;
};
const withImages = async (B: number, tilesEach: number) => {
  const embeds = model.encodeImages(pixels(B * tilesEach), B * tilesEach);
  try {
    const ids = Array.from(
      { length: B },
      (_, b) => [...tokens(5, b), ...Array(tilesEach * perTile).fill(img), ...tokens(12, b + 2)],
    );
    await generate(
      model,
      { ids, mask: ids.map((row) => row.map(() => 1)), imageEmbeds: embeds },
      greedy,
      opts,
    );
  } finally {
    embeds.buffer.destroy();
  }
};

await round("text, 1 row, 20 ids", () => generate(model, text(1, 20), greedy, opts));
await round("text, 3 rows, 12 ids", () => generate(model, text(3, 12), greedy, opts));
await round("text, 3 rows, sampled", () => generate(model, text(3, 12), sampled, opts));
await round("text, 5 rows, 40 ids", () => generate(model, text(5, 40), greedy, opts));
await round("text, 8 rows, 40 ids", () => generate(model, text(8, 40), greedy, opts));
await round("text, 9 rows, 40 ids", () => generate(model, text(9, 40), greedy, opts));
await round("text, 12 rows, 40 ids", () => generate(model, text(12, 40), greedy, opts));
await round("text, 14 rows, 40 ids", () => generate(model, text(14, 40), greedy, opts));
await round("text, 20 rows, 40 ids", () => generate(model, text(20, 40), greedy, opts));
await round("text, 1 row, 600 ids", () => generate(model, text(1, 600), greedy, opts));
await round("follow-up of 31 ids after 600", async () => {
  const runner = model.newRunner(1, 700);
  try {
    await generate(model, text(1, 600), { ...greedy, maxNewTokens: 1 }, { ...opts, runner });
    const next = tokens(31, 6);
    await generate(model, { ids: [next], mask: [next.map(() => 1)], imageEmbeds: null }, greedy, {
      ...opts,
      runner,
    });
  } finally {
    runner.destroy();
  }
});
await round("beam search, 3 beams", () => beamSearch(model, text(1, 30), { ...greedy, numBeams: 3 }, opts));
await round("encode 7 tiles", async () => {
  model.encodeImages(pixels(7), 7).buffer.destroy();
  await gpu.sync("7 tiles");
});
await round("encode 13 tiles", async () => {
  model.encodeImages(pixels(13), 13).buffer.destroy();
  await gpu.sync("13 tiles");
});
await round("7 tiles + 1 row", () => withImages(1, 7));
await round("3 tiles each + 2 rows", () => withImages(2, 3));
if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(result, null, 1) + "\n");
gpu.destroy();
