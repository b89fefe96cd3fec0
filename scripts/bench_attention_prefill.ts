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
import type { Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { attentionCausal } from "../src/ops/attention_causal.ts";
import {
  attentionPrefill,
  type AttentionPrefillConfig,
  attentionPrefillConfigs,
  type AttentionPrefillShape,
  defaultAttentionPrefillConfig,
} from "../src/ops/attention_prefill.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out: outArg } = sweep.parseArgs({});
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

const { gpu, timer } = await sweep.openGpu();

interface Row extends sweep.FlopsTiming {
  B: number;
  T: number;
  startPos: number;
  S: number;
  H: number;
  Hkv: number;
  Dh: number;
}
const rows: Row[] = [];

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
  // The whole cache is filled, so positions past the chunk hold values the kernels must ignore.
  await sweep.fillAttentionInputs(gpu, "bench_attention_prefill.fill", seed, q, k, v);
  seed += 3;

  let refData: Float32Array | null = null;
  for (const [name, launch] of candidates) {
    const target = name === baselineName ? ref : out;
    try {
      sweep.launchOnce(
        gpu,
        `bench_attention_prefill.check ${name}`,
        (r) => launch(r, q, k, v, keyValid, target, s),
      );
      const got = await gpu.readF32(target);
      if (name === baselineName) refData = got;
      const err = sweep.compareOutputs(got, refData!);
      const t = await sweep.timeCandidate(gpu, timer, {
        name,
        cacheLabel: `bench_attention_prefill.${name}`,
        recorderLabel: `bench_attention_prefill ${name}`,
        launch: (r) => launch(r, q, k, v, keyValid, target, s),
        warmupDispatches: 1,
        plan: sweep.twentyMsPasses(quick, minMs),
        checkStamped: true,
      });
      const row: Row = { B, T, startPos, S, H, Hkv, Dh, ...sweep.flopsTiming(name, t, flops, err) };
      rows.push(row);
      console.log(`${shapeName(s)}  ${sweep.flopsTimingColumns(row, 26)}`);
    } catch (e) {
      sweep.logFailure(`${shapeName(s)} ${name}`, e);
    }
  }
  [q, k, v, keyValid, out, ref].forEach((t) => t.buffer.destroy());
}

console.log(`\nSummary (baseline = attentionCausal; per prompt = ${layers} layers)`);
for (const s of shapes) {
  const rs = rows.filter((r) => r.B === s.batch && r.T === s.tokens && r.Dh === s.headDim);
  const { base, ranked } = sweep.rankAgainst(rs, baselineName, 1e-10, (r) => r.ms);
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
await sweep.writeJson(outArg, "attention_prefill.json", { adapter: gpu.adapterDescription, rows });
gpu.destroy();
