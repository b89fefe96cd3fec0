// Why is the prompt pass's w2 GEMM slower than scripts/bench_linear_dp4a.ts says it should be? Times the
// LLM.int8 GEMM of the last layer's w2 (kernels/linear_dp4a.wgsl, then the outlier GEMM of
// kernels/linear_tiled.wgsl) on the same weights and buffers twice: on the input a real prompt pass gives
// (the second-to-last layer's output of an 1800-token prompt through the last layer's ffn_norm, w1, w3 and
// silu·up, all on the bench's random-weight model), then on uniform ±3 inputs with as many outlier
// columns. Full scale needs the GPU host (--tiny: the bench's tiny shapes, a smoke run):
//   deno run -A scripts/probe_prompt_w2.ts [--tiny] [--ms 200] [--tokens 1800] [--out probe.json]
import { syntheticModelContext } from "../src/bench/bench_context.ts";
import { benchShapes } from "../src/bench/shapes.ts";
import * as sweep from "../src/bench/sweep.ts";
import type { Recorder } from "../src/gpu/recorder.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { recordLinear } from "../src/ops/linear.ts";
import {
  languageOutlierCap,
  linearDp4a,
  llmInt8Gather,
  llmInt8OutlierGemm,
  llmInt8Outliers,
  llmInt8Quantize,
  LlmInt8Scratch,
  recordLinearLlmInt8,
} from "../src/ops/llm_int8.ts";
import { rmsNorm } from "../src/ops/rms_norm.ts";
import { siluMul } from "../src/ops/silu_mul.ts";

const { args, minMs, out: outArg } = sweep.parseArgs({
  tokens: { type: "string" },
  tiny: { type: "boolean", default: false },
}, 200);
const shapes = benchShapes(args.tiny ? "tiny" : "full");
const T = Number(args.tokens ?? shapes.prefillTokens);
const ctx = await syntheticModelContext(shapes, "llm-int8-prefill");
const { gpu, timer } = ctx;
const m = await ctx.model();
const { hidden: D, intermediate: I, layers, eps } = shapes.language;
const lw = m.language.layers[layers - 1];

// The last layer's input rows, from a real prompt pass.
const h = gpu.createTensor("probe.h", "f32", [T, D]);
const counts = gpu.createTensor("probe.counts", "u32", [layers]); // each layer's w2 outlier columns
{
  const runner = m.model.newRunner(1, T + 1);
  const V = shapes.language.vocab;
  const ids = Array.from({ length: T }, (_, t) => (3 * 104729 + t * 7919) % V)
    .map((id) => (id === shapes.imageContextId ? id - 1 : id));
  const r = gpu.recorder("probe.prompt");
  const free = runner.recordPrefill(
    r,
    [ids],
    [ids.map(() => 1)],
    shapes.imageContextId,
    null,
    // A Recorder copies after its pass: submitting here copies what this layer left.
    (name, l, t, rr) => {
      if (name === "lm.layer" && l === layers - 2) rr.copyAfter(t, h.buffer, T * D * 4);
      else if (name === "lm.llm_int8.w2_outliers") rr.copyAfter(t, counts.buffer, 4, 4 * l);
      else return;
      rr.submit();
    },
  );
  r.submit();
  await gpu.sync("prompt pass");
  free();
  runner.destroy();
  const perLayer = Array.from(await gpu.readU32(counts));
  console.log(`w2 input outlier columns by layer (cap ${languageOutlierCap}): ${perLayer.join(" ")}`);
}

const normed = gpu.createTensor("probe.normed", "f32", [T, D]);
const gate = gpu.createTensor("probe.gate", "f32", [T, I]);
const up = gpu.createTensor("probe.up", "f32", [T, I]);
const act = gpu.createTensor("probe.act", "f32", [T, I]);
const out = gpu.createTensor("probe.out", "f32", [T, D]);
const scratch = new LlmInt8Scratch(gpu, "probe.llm_int8", T, I, I, languageOutlierCap); // w1, w3 too
const views = scratch.views(T, I, D);
if (lw.w2.kind !== "int8") throw new Error("int8 weights expected");
const w2 = lw.w2;

async function prepare(what: string, record: (r: Recorder) => void): Promise<number> {
  const r = gpu.recorder(`probe.${what}`);
  record(r);
  llmInt8Outliers(r, act, views.flags);
  llmInt8Quantize(r, act, views);
  llmInt8Gather(r, act, views, w2);
  r.submit();
  await gpu.sync(what);
  return (await gpu.readU32(views.outliers))[0];
}

async function time(name: string, launch: (r: Recorder, call: number) => void): Promise<number> {
  const t = await sweep.timeCandidate(gpu, timer, {
    name,
    cacheLabel: `probe.${name}`,
    recorderLabel: `probe ${name}`,
    launch: (r, d, p, D) => launch(r, p * D + d),
    warmupDispatches: 1,
    plan: sweep.twentyMsPasses(Boolean(args.tiny), minMs),
    checkStamped: false,
    checkLabel: name,
  });
  return t.ms;
}

const results: Record<string, number> = {};
async function timeBoth(tag: string, count: number) {
  const gemm = await time(
    `${tag} int8 gemm`,
    (r) => linearDp4a(r, act, views, w2, out, { accumulate: true, epilogueColumns: 0 }),
  );
  const outl = await time(`${tag} outlier gemm`, (r) => llmInt8OutlierGemm(r, views, w2, out, 0));
  console.log(
    `${tag.padEnd(8)} ${count} outlier columns: int8 GEMM ${gemm.toFixed(3)} ms, outlier GEMM ${
      outl.toFixed(3)
    } ms`,
  );
  Object.assign(results, {
    [`${tag}_outliers`]: count,
    [`${tag}_int8_gemm_ms`]: gemm,
    [`${tag}_outlier_gemm_ms`]: outl,
  });
}

const realCount = await prepare("real", (r) => {
  rmsNorm(r, h, lw.ffnNorm, normed, eps);
  recordLinear(r, normed, lw.w1, gate, "tiled");
  recordLinear(r, normed, lw.w3, up, "tiled");
  siluMul(r, gate, up, act);
});
await timeBoth("real", realCount);

// The GEMM after what runs before it in the prompt pass: each sequence timed with and without the final
// int8 GEMM; the difference is what the GEMM costs there.
const prep = (r: Recorder) => {
  llmInt8Outliers(r, act, views.flags);
  llmInt8Quantize(r, act, views);
  llmInt8Gather(r, act, views, w2);
};
const gemm = (r: Recorder) => linearDp4a(r, act, views, w2, out, { accumulate: true, epilogueColumns: 0 });
const upstream = (r: Recorder) => {
  recordLinearLlmInt8(r, normed, lw.w1, gate, scratch);
  recordLinearLlmInt8(r, normed, lw.w3, up, scratch);
};
const sequences: [string, (r: Recorder) => void][] = [
  ["prep", prep],
  ["silu+prep", (r) => (siluMul(r, gate, up, act), prep(r))],
  ["w1+w3+silu+prep", (r) => (upstream(r), siluMul(r, gate, up, act), prep(r))],
];
for (const [tag, seq] of sequences) {
  const without = await time(`${tag}`, seq);
  const withGemm = await time(`${tag}+gemm`, (r) => (seq(r), gemm(r)));
  console.log(
    `after ${tag.padEnd(16)}: int8 GEMM ${(withGemm - without).toFixed(3)} ms (${
      without.toFixed(3)
    } ms without)`,
  );
  results[`gemm_after_${tag}_ms`] = withGemm - without;
}
{
  const [tag, seq] = sequences[sequences.length - 1];
  const before = (r: Recorder) => (seq(r), gemm(r));
  const without = await time(`${tag}+gemm`, before);
  const withOutl = await time(
    `${tag}+gemm+outlier gemm`,
    (r) => (before(r), llmInt8OutlierGemm(r, views, w2, out, 0)),
  );
  console.log(`after ${tag}+gemm: outlier GEMM ${(withOutl - without).toFixed(3)} ms`);
  results.outlier_gemm_after_all_ms = withOutl - without;
}
// Every call on another layer's weights, as in the prompt pass (the outlier GEMM reads only their scale).
{
  const layerW = (call: number) => m.language.layers[call % layers];
  await prepare("real again", () => {});
  const w2Rot = await time("w2 rotating", (r, call) => {
    const w = layerW(call).w2;
    if (w.kind === "int8") linearDp4a(r, act, views, w, out, { accumulate: true, epilogueColumns: 0 });
  });
  const outlRot = await time("w2 outliers rotating", (r, call) => {
    const w = layerW(call).w2;
    if (w.kind === "int8") llmInt8OutlierGemm(r, views, w, out, 0);
  });
  const v1 = scratch.views(T, D, I);
  const w1 = lw.w1;
  if (w1.kind !== "int8") throw new Error("int8 weights expected");
  const prep1 = gpu.recorder("probe.w1");
  llmInt8Outliers(prep1, normed, v1.flags);
  llmInt8Quantize(prep1, normed, v1);
  llmInt8Gather(prep1, normed, v1, w1);
  prep1.submit();
  const w1Same = await time("w1 same", (r) => linearDp4a(r, normed, v1, w1, gate, { epilogueColumns: 0 }));
  const w1Rot = await time("w1 rotating", (r, call) => {
    const w = layerW(call).w1;
    if (w.kind === "int8") linearDp4a(r, normed, v1, w, gate, { epilogueColumns: 0 });
  });
  console.log(
    `rotating over the ${layers} layers: w2 int8 GEMM ${w2Rot.toFixed(3)} ms, its outlier GEMM ${
      outlRot.toFixed(3)
    } ms; w1 int8 GEMM ${w1Rot.toFixed(3)} ms (${w1Same.toFixed(3)} ms on one layer's)`,
  );
  Object.assign(results, {
    w2_rotating_int8_gemm_ms: w2Rot,
    w2_rotating_outlier_gemm_ms: outlRot,
    w1_int8_gemm_ms: w1Same,
    w1_rotating_int8_gemm_ms: w1Rot,
  });
}

const uniformCount = await prepare("uniform", (r) => fillRandom(r, act, { seed: 7, lo: -3, hi: 3 }));
// As many outlier columns as the real input, spread evenly, one value ≥ θ each.
for (let i = 0; i < realCount; i++) {
  const c = Math.floor((i + 0.5) * I / realCount);
  gpu.writeTensor(act, Float32Array.of(20), (((i * 7) % T) * I + c) * 4);
}
const injected = await prepare("uniform", () => {});
await timeBoth("uniform", injected);
console.log(`(uniform before injecting: ${uniformCount} outlier columns)`);
await sweep.writeJson(outArg, "probe_prompt_w2.json", {
  adapter: gpu.adapterDescription,
  tokens: T,
  ...results,
});
