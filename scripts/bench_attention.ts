// Times kernels/attention_full.wgsl (InternViT attention) in every tiling of attentionFullConfigs against the
// kernel it replaced (kernels/attention_full_baseline.wgsl) at the real ViT shapes: T = 1025 tokens, H = 25
// heads, Dh = 128, B = 1 and 7 tiles.
//   deno run -A scripts/bench_attention.ts [--quick] [--ms 200] [--out attention.json]
// Timing: GPU timestamps around passes of D back-to-back dispatches (D·time ≈ 20 ms), passes until ≥ --ms
// per candidate; ms per call is the median pass over D. TFLOP/s counts 4·B·H·T²·Dh (Q·Kᵀ and P·V).
// Every candidate's output is compared with the baseline's: normalised error Σ(a−b)²/Σb² and the largest
// |a−b| over the largest |b|.
// --quick: small odd shapes and two passes of one dispatch (a smoke run on llvmpipe, well under a minute).
import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/device.ts";
import { f32, type Recorder } from "../src/gpu/recorder.ts";
import { DispatchCache } from "../src/gpu/dispatch_cache.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import {
  attentionFull,
  type AttentionFullConfig,
  attentionFullConfigs,
  type AttentionFullShape,
  defaultAttentionFullConfig,
} from "../src/ops/attention_full.ts";
import { GpuTimer, median, nsToMs } from "../src/bench/gpu_timer.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    ms: { type: "string", default: "200" },
    out: { type: "string" },
  },
});
const quick = args.quick!;
const minMs = Number(args.ms);

const shapes: AttentionFullShape[] = quick
  ? [
    { batch: 2, tokens: 130, numHeads: 3, headDim: 128 },
    { batch: 1, tokens: 37, numHeads: 2, headDim: 64 },
  ]
  : [
    { batch: 1, tokens: 1025, numHeads: 25, headDim: 128 },
    { batch: 7, tokens: 1025, numHeads: 25, headDim: 128 },
  ];

type Launch = (r: Recorder, q: Tensor, k: Tensor, v: Tensor, out: Tensor, s: AttentionFullShape) => void;

/** The kernel before the rewrite: 16 query rows per workgroup, same bindings and params. */
const baseline: Launch = (r, q, k, v, out, s) =>
  r.dispatch("attention_full_baseline", {
    bindings: [q, k, v, out],
    params: [s.tokens, s.numHeads, s.headDim, f32(1 / Math.sqrt(s.headDim))],
    workgroups: [Math.ceil(s.tokens / 16), s.numHeads, s.batch],
    label: "attention_full_baseline",
  });

const configName = (c: AttentionFullConfig) =>
  `BQ${c.queryTile}${c.prefetch ? " prefetch" : ""}` +
  (c.queryTile === defaultAttentionFullConfig.queryTile && c.prefetch === defaultAttentionFullConfig.prefetch
    ? " (default)"
    : "");
const candidates: [string, Launch][] = [
  ["baseline", baseline],
  ...attentionFullConfigs.map((c): [string, Launch] => [
    configName(c),
    (r, q, k, v, out, s) => attentionFull(r, q, k, v, out, s, c),
  ]),
];

const gpu = await Gpu.create();
const timer = GpuTimer.install(gpu);
console.log(`adapter: ${gpu.adapterDescription} (fallback ${gpu.isFallbackAdapter}), timing ${timer.method}`);

interface Row {
  B: number;
  T: number;
  H: number;
  Dh: number;
  kernel: string;
  ms: number;
  msMin: number;
  tflops: number;
  dispatchesPerPass: number;
  passes: number;
  nerr: number;
  maxDiffOverMax: number;
}
const rows: Row[] = [];

/** Median and minimum ms per dispatch over `passes` passes of `D` dispatches each. */
async function timePasses(name: string, runPass: () => void, D: number, passes: number) {
  if (timer.hasTimestamps) {
    timer.start(name);
    for (let p = 0; p < passes; p++) runPass();
    const per = (await timer.collect()).map((st) => nsToMs(st.endNs - st.beginNs) / D);
    await gpu.check(name);
    return { ms: median(per), msMin: Math.min(...per) };
  }
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) runPass();
  await gpu.sync(name);
  const ms = (performance.now() - t0) / (passes * D);
  return { ms, msMin: ms };
}

let seed = 1;
for (const s of shapes) {
  const { batch: B, tokens: T, numHeads: H, headDim: Dh } = s;
  const flops = 4 * B * H * T * T * Dh;
  const dims = [B * T, H * Dh];
  const [q, k, v] = ["q", "k", "v"].map((n) => gpu.createTensor(`bench_attention.${n}`, "f32", dims));
  const out = gpu.createTensor("bench_attention.out", "f32", dims);
  const ref = gpu.createTensor("bench_attention.ref", "f32", dims);
  const init = gpu.recorder("bench_attention.fill");
  // Scores of a few units (q·k·Dh^-0.5 with entries in ±2), like trained ViT attention.
  fillRandom(init, q, { seed: seed++, lo: -2, hi: 2 });
  fillRandom(init, k, { seed: seed++, lo: -2, hi: 2 });
  fillRandom(init, v, { seed: seed++ });
  init.submit();
  await gpu.sync("filling q, k, v");

  let refData: Float32Array | null = null;
  for (const [name, launch] of candidates) {
    const target = name === "baseline" ? ref : out;
    try {
      const chk = gpu.recorder(`bench_attention.check ${name}`);
      launch(chk, q, k, v, target, s);
      chk.submit();
      const got = await gpu.readF32(target);
      if (name === "baseline") refData = got;
      let num = 0, den = 0, maxDiff = 0, maxRef = 0;
      for (let i = 0; i < got.length; i++) {
        const d = got[i] - refData![i];
        num += d * d;
        den += refData![i] ** 2;
        maxDiff = Math.max(maxDiff, Math.abs(d));
        maxRef = Math.max(maxRef, Math.abs(refData![i]));
      }
      const nerr = den > 0 ? num / den : num;
      const maxDiffOverMax = maxRef > 0 ? maxDiff / maxRef : maxDiff;

      const cache = new DispatchCache(`bench_attention.${name}`);
      const runPass = (D: number) => {
        const r = gpu.recorder(`bench_attention ${name}`, cache);
        for (let d = 0; d < D; d++) launch(r, q, k, v, target, s);
        r.submit();
      };
      runPass(1); // warm-up: pipeline build and bind groups
      await gpu.sync(`warming up ${name}`);
      let D = 1, passes = 2;
      if (!quick) {
        // Calibration pass, then passes of ≈ 20 ms (the timer holds at most 2048 passes).
        const once = await timePasses(name, () => runPass(1), 1, 3);
        D = Math.max(1, Math.min(200, Math.round(20 / once.ms)));
        passes = Math.max(5, Math.min(2000, Math.ceil(minMs / (D * once.ms))));
      }
      const t = await timePasses(name, () => runPass(D), D, passes);
      cache.destroy();
      const row: Row = {
        B,
        T,
        H,
        Dh,
        kernel: name,
        ms: t.ms,
        msMin: t.msMin,
        tflops: flops / (t.ms * 1e9),
        dispatchesPerPass: D,
        passes,
        nerr,
        maxDiffOverMax,
      };
      rows.push(row);
      console.log(
        `B=${B} T=${T} H=${H} Dh=${Dh}  ${name.padEnd(22)} ${t.ms.toFixed(3).padStart(9)} ms/call ` +
          `(min ${t.msMin.toFixed(3)})  ${row.tflops.toPrecision(3).padStart(6)} TFLOP/s  ` +
          `nerr ${nerr.toExponential(1)}  max|Δ|/max|old| ${maxDiffOverMax.toExponential(1)}` +
          `${nerr > 1e-10 ? "  MISMATCH" : ""}  [${passes}×${D}]`,
      );
    } catch (e) {
      console.log(`B=${B} T=${T} ${name}: FAILED ${(e as Error).message.split("\n")[0]}`);
    }
  }
  [q, k, v, out, ref].forEach((t) => t.buffer.destroy());
}

console.log("\nSummary (baseline = kernels/attention_full_baseline.wgsl)");
for (const s of shapes) {
  const rs = rows.filter((r) => r.B === s.batch && r.T === s.tokens && r.Dh === s.headDim);
  const base = rs.find((r) => r.kernel === "baseline");
  const ranked = rs.filter((r) => r.kernel !== "baseline" && r.nerr <= 1e-10).sort((a, b) => a.ms - b.ms);
  if (!base || ranked.length === 0) continue;
  console.log(
    `B=${s.batch} T=${s.tokens} H=${s.numHeads} Dh=${s.headDim}: baseline ${base.ms.toFixed(3)} ms ` +
      `(${base.tflops.toPrecision(3)} TFLOP/s); ` +
      ranked.map((r) =>
        `${r.kernel} ${r.ms.toFixed(3)} ms ${r.tflops.toPrecision(3)} TFLOP/s ×${(base.ms / r.ms).toFixed(2)}`
      ).join(" | "),
  );
}
const outPath = args.out ?? (Deno.env.get("OUT") ? `${Deno.env.get("OUT")}/attention.json` : null);
if (outPath) {
  await Deno.writeTextFile(outPath, JSON.stringify({ adapter: gpu.adapterDescription, rows }, null, 1));
  console.log(`wrote ${outPath}`);
}
gpu.destroy();
