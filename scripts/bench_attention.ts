// Times kernels/attention_full.wgsl (InternViT attention) in every tiling of attentionFullConfigs against the
// kernel it replaced (kernels/attention_full_baseline.wgsl) at the real ViT shapes: T = 1025 tokens, H = 25
// heads, Dh = 128, B = 1 and 7 tiles.
//   deno run -A scripts/bench_attention.ts [--quick] [--ms 200] [--out attention.json]
// Timing: GPU timestamps around passes of D back-to-back dispatches (D·time ≈ 20 ms), passes until ≥ --ms
// per candidate; ms per call is the median pass over D. TFLOP/s counts 4·B·H·T²·Dh (Q·Kᵀ and P·V).
// Every candidate's output is compared with the baseline's: normalised error Σ(a−b)²/Σb² and the largest
// |a−b| over the largest |b|.
// --quick: small odd shapes and two passes of one dispatch (a smoke run on llvmpipe, well under a minute).
import { f32, type Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import {
  attentionFull,
  type AttentionFullConfig,
  attentionFullConfigs,
  type AttentionFullShape,
  defaultAttentionFullConfig,
} from "../src/ops/attention_full.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out: outArg } = sweep.parseArgs({});

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

const { gpu, timer } = await sweep.openGpu();

interface Row extends sweep.FlopsTiming {
  B: number;
  T: number;
  H: number;
  Dh: number;
}
const rows: Row[] = [];

let seed = 1;
for (const s of shapes) {
  const { batch: B, tokens: T, numHeads: H, headDim: Dh } = s;
  const flops = 4 * B * H * T * T * Dh;
  const dims = [B * T, H * Dh];
  const [q, k, v] = ["q", "k", "v"].map((n) => gpu.createTensor(`bench_attention.${n}`, "f32", dims));
  const out = gpu.createTensor("bench_attention.out", "f32", dims);
  const ref = gpu.createTensor("bench_attention.ref", "f32", dims);
  await sweep.fillAttentionInputs(gpu, "bench_attention.fill", seed, q, k, v);
  seed += 3;

  let refData: Float32Array | null = null;
  for (const [name, launch] of candidates) {
    const target = name === "baseline" ? ref : out;
    try {
      sweep.launchOnce(gpu, `bench_attention.check ${name}`, (r) => launch(r, q, k, v, target, s));
      const got = await gpu.readF32(target);
      if (name === "baseline") refData = got;
      const err = sweep.compareOutputs(got, refData!);
      const t = await sweep.timeCandidate(gpu, timer, {
        name,
        cacheLabel: `bench_attention.${name}`,
        recorderLabel: `bench_attention ${name}`,
        launch: (r) => launch(r, q, k, v, target, s),
        warmupDispatches: 1,
        plan: sweep.twentyMsPasses(quick, minMs),
        checkStamped: true,
      });
      const row: Row = { B, T, H, Dh, ...sweep.flopsTiming(name, t, flops, err) };
      rows.push(row);
      console.log(`B=${B} T=${T} H=${H} Dh=${Dh}  ${sweep.flopsTimingColumns(row, 22)}`);
    } catch (e) {
      sweep.logFailure(`B=${B} T=${T} ${name}`, e);
    }
  }
  [q, k, v, out, ref].forEach((t) => t.buffer.destroy());
}

console.log("\nSummary (baseline = kernels/attention_full_baseline.wgsl)");
for (const s of shapes) {
  const rs = rows.filter((r) => r.B === s.batch && r.T === s.tokens && r.Dh === s.headDim);
  const { base, ranked } = sweep.rankAgainst(rs, "baseline", 1e-10, (r) => r.ms);
  if (!base || ranked.length === 0) continue;
  console.log(
    `B=${s.batch} T=${s.tokens} H=${s.numHeads} Dh=${s.headDim}: baseline ${base.ms.toFixed(3)} ms ` +
      `(${base.tflops.toPrecision(3)} TFLOP/s); ` +
      ranked.map((r) =>
        `${r.kernel} ${r.ms.toFixed(3)} ms ${r.tflops.toPrecision(3)} TFLOP/s ×${(base.ms / r.ms).toFixed(2)}`
      ).join(" | "),
  );
}
await sweep.writeJson(outArg, "attention.json", { adapter: gpu.adapterDescription, rows });
gpu.destroy();
