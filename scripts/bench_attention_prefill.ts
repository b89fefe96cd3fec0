// Times kernels/attention_prefill.wgsl (the LLM prompt pass's causal GQA attention) in every tiling of
// attentionPrefillConfigs against attentionCausal (kernels/attention_causal.wgsl without split-K, what the
// prompt pass ran before) at InternLM2-20B's shapes: H = 48 query heads, Hkv = 8, Dh = 128, a cache of
// S = 2048 positions, one sequence from position 0 with T = 1800 (7 image tiles × 256 + text) and T = 512.
//   deno run -A scripts/bench_attention_prefill.ts [--quick] [--ms 200] [--out attention_prefill.json]
// Timing: GPU timestamps around passes of D back-to-back dispatches (D·time ≈ 20 ms), passes until ≥ --ms
// per candidate; ms per call is the median pass over D. TFLOP/s counts Q·Kᵀ and P·V over the causal
// triangle: 4·B·H·Dh·T·(start + T/2), i.e. 2·2·Dh·H·T²/2 from position 0.
// Every candidate's output is compared with attentionCausal's: normalised error Σ(a−b)²/Σb² (flagged above
// the kernel tests' tolerance, 1e-10) and the largest |a−b| over the largest |b|.
// --quick: small odd shapes (continued chunk, padded batch) and two passes of one dispatch, a smoke run on
// llvmpipe well under a minute.
import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/device.ts";
import type { Recorder } from "../src/gpu/recorder.ts";
import { DispatchCache } from "../src/gpu/dispatch_cache.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { attentionCausal } from "../src/ops/attention_causal.ts";
import {
  attentionPrefill,
  type AttentionPrefillConfig,
  attentionPrefillConfigs,
  type AttentionPrefillShape,
  defaultAttentionPrefillConfig,
} from "../src/ops/attention_prefill.ts";
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
const layers = 48; // InternLM2-20B: one call per layer per prompt

interface BenchShape extends AttentionPrefillShape {
  seq: number; // S cache positions
  pad?: number[]; // left padding per sample
}

const shapes: BenchShape[] = quick
  ? [
    { batch: 1, tokens: 130, startPos: 45, numHeads: 12, numKvHeads: 2, headDim: 128, seq: 200 },
    { batch: 2, tokens: 37, startPos: 0, numHeads: 6, numKvHeads: 1, headDim: 64, seq: 40, pad: [5, 0] },
  ]
  : [
    { batch: 1, tokens: 1800, startPos: 0, numHeads: 48, numKvHeads: 8, headDim: 128, seq: 2048 },
    { batch: 1, tokens: 512, startPos: 0, numHeads: 48, numKvHeads: 8, headDim: 128, seq: 2048 },
  ];

type Launch = (
  r: Recorder,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  valid: Tensor,
  out: Tensor,
  s: BenchShape,
) => void;

const configName = (c: AttentionPrefillConfig) =>
  `BQ${c.queryTile} ${c.rows}${c.prefetch ? " prefetch" : ""}` +
  (c.queryTile === defaultAttentionPrefillConfig.queryTile && c.rows === defaultAttentionPrefillConfig.rows &&
      c.prefetch === defaultAttentionPrefillConfig.prefetch
    ? " (default)"
    : "");
const baselineName = "attention_causal";
const candidates: [string, Launch][] = [
  // No scratch: the prompt pass's grid is large enough that attentionCausal never splits the keys.
  [baselineName, (r, q, k, v, valid, out, s) => attentionCausal(r, q, k, v, valid, out, s)],
  ...attentionPrefillConfigs.map((c): [string, Launch] => [
    configName(c),
    (r, q, k, v, valid, out, s) => attentionPrefill(r, q, k, v, valid, out, s, c),
  ]),
];

const gpu = await Gpu.create();
const timer = GpuTimer.install(gpu);
console.log(`adapter: ${gpu.adapterDescription} (fallback ${gpu.isFallbackAdapter}), timing ${timer.method}`);

interface Row {
  B: number;
  T: number;
  startPos: number;
  S: number;
  H: number;
  Hkv: number;
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

const shapeName = (s: BenchShape) =>
  `B=${s.batch} T=${s.tokens} start=${s.startPos} S=${s.seq} H=${s.numHeads}/${s.numKvHeads} Dh=${s.headDim}`;

let seed = 1;
for (const s of shapes) {
  const { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh, seq: S } = s;
  const flops = 4 * B * H * Dh * T * (startPos + T / 2);
  const q = gpu.createTensor("bench_attention_prefill.q", "f32", [B * T, H * Dh]);
  const [k, v] = ["k", "v"].map((n) =>
    gpu.createTensor(`bench_attention_prefill.${n}`, "f32", [B, S, Hkv * Dh])
  );
  const valid = new Int32Array(B * S).fill(1);
  s.pad?.forEach((n, b) => valid.fill(0, b * S, b * S + n));
  const keyValid = gpu.uploadTensor("bench_attention_prefill.key_valid", "i32", [B, S], valid);
  const out = gpu.createTensor("bench_attention_prefill.out", "f32", [B * T, H * Dh]);
  const ref = gpu.createTensor("bench_attention_prefill.ref", "f32", [B * T, H * Dh]);
  const init = gpu.recorder("bench_attention_prefill.fill");
  // Scores of a few units (q·k·Dh^-0.5 with entries in ±2); the whole cache is filled, so positions past
  // the chunk hold values the kernels must ignore.
  fillRandom(init, q, { seed: seed++, lo: -2, hi: 2 });
  fillRandom(init, k, { seed: seed++, lo: -2, hi: 2 });
  fillRandom(init, v, { seed: seed++ });
  init.submit();
  await gpu.sync("filling q, k, v");

  let refData: Float32Array | null = null;
  for (const [name, launch] of candidates) {
    const target = name === baselineName ? ref : out;
    try {
      const chk = gpu.recorder(`bench_attention_prefill.check ${name}`);
      launch(chk, q, k, v, keyValid, target, s);
      chk.submit();
      const got = await gpu.readF32(target);
      if (name === baselineName) refData = got;
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

      const cache = new DispatchCache(`bench_attention_prefill.${name}`);
      const runPass = (D: number) => {
        const r = gpu.recorder(`bench_attention_prefill ${name}`, cache);
        for (let d = 0; d < D; d++) launch(r, q, k, v, keyValid, target, s);
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
        startPos,
        S,
        H,
        Hkv,
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
        `${shapeName(s)}  ${name.padEnd(26)} ${t.ms.toFixed(3).padStart(9)} ms/call ` +
          `(min ${t.msMin.toFixed(3)})  ${row.tflops.toPrecision(3).padStart(6)} TFLOP/s  ` +
          `nerr ${nerr.toExponential(1)}  max|Δ|/max|old| ${maxDiffOverMax.toExponential(1)}` +
          `${nerr > 1e-10 ? "  MISMATCH" : ""}  [${passes}×${D}]`,
      );
    } catch (e) {
      console.log(`${shapeName(s)} ${name}: FAILED ${(e as Error).message.split("\n")[0]}`);
    }
  }
  [q, k, v, keyValid, out, ref].forEach((t) => t.buffer.destroy());
}

console.log(`\nSummary (baseline = attentionCausal; per prompt = ${layers} layers)`);
for (const s of shapes) {
  const rs = rows.filter((r) => r.B === s.batch && r.T === s.tokens && r.Dh === s.headDim);
  const base = rs.find((r) => r.kernel === baselineName);
  const ranked = rs.filter((r) => r.kernel !== baselineName && r.nerr <= 1e-10).sort((a, b) => a.ms - b.ms);
  if (!base || ranked.length === 0) continue;
  console.log(
    `${shapeName(s)}: ${baselineName} ${base.ms.toFixed(3)} ms (${base.tflops.toPrecision(3)} TFLOP/s, ` +
      `${(base.ms * layers).toFixed(1)} ms per prompt); ` +
      ranked.map((r) =>
        `${r.kernel} ${r.ms.toFixed(3)} ms ${r.tflops.toPrecision(3)} TFLOP/s ×${
          (base.ms / r.ms).toFixed(2)
        } ` +
        `(${(r.ms * layers).toFixed(1)} ms per prompt)`
      ).join(" | "),
  );
}
const outPath = args.out ?? (Deno.env.get("OUT") ? `${Deno.env.get("OUT")}/attention_prefill.json` : null);
if (outPath) {
  await Deno.writeTextFile(outPath, JSON.stringify({ adapter: gpu.adapterDescription, rows }, null, 1));
  console.log(`wrote ${outPath}`);
}
gpu.destroy();
