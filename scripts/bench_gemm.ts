// Times the prefill / vision matrix-matrix linear (kernels/linear_tiled.wgsl) at the real InternVL-Chat-V1.5
// shapes: every tiling in `tiledConfigs` against the kernel it replaced (kernels/linear_tiled_baseline.wgsl,
// launched only from here), in the same run, on the same inputs.
//   deno run -A scripts/bench_gemm.ts [--quick] [--ms 200] [--only vit.fc1,lm.w2] [--tilings 1,10-18]
//     [--tokens 16,32,64] [--splits 1,4,8] [--out gemm.json]
// --tilings: indices into `tiledConfigs` (ranges a-b) to time; all of them by default.
// --tokens: the language model's products (wqkv, wo, w1, w2) at these row counts instead of the shapes
//   below (a short prompt's pass), each also as the decode-sized chunks a weight-only prompt of ≤ 64 rows runs
//   (`matvec ×n`: the 8-row matrix-vector kernel n times). --splits: each tiling at these split-K counts
//   (`sN`, kernels/linear_split_sum.wgsl after; 1: no split, the default).
// Timing: GPU timestamps around passes of D back-to-back dispatches (D·time ≳ 2 ms), passes enough for
// ≥ --ms per candidate; dispatches alternate between two weight copies. TFLOP/s counts 2·M·N·K.
// Every candidate's output is compared with the baseline's (normalised error Σ(a−b)²/Σb² over the first
// and last rows of out, which include the partial tiles).
// --quick: small odd shapes and short timings (a correctness smoke run on llvmpipe).
import type { Recorder } from "../src/gpu/recorder.ts";
import { frontView, type Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import {
  type LinearWeights,
  recordLinear,
  type TiledConfig,
  tiledConfig,
  tiledConfigName,
  tiledConfigs,
} from "../src/ops/linear.ts";
import * as sweep from "../src/bench/sweep.ts";

const { args, quick, minMs, out: outArg } = sweep.parseArgs({
  only: { type: "string" },
  tilings: { type: "string" },
  tokens: { type: "string" },
  splits: { type: "string" },
}, 20);
const numberList = (v: string | undefined, name: string): number[] | null => {
  if (v === undefined) return null;
  const xs = v.split(",").map(Number);
  if (!xs.every((x) => Number.isInteger(x) && x >= 1)) throw new Error(`--${name} ${v}: positive integers`);
  return xs;
};
const tokenCounts = numberList(args.tokens, "tokens");
const splitCounts = numberList(args.splits, "splits") ?? [1];

interface Shape {
  name: string;
  M: number; // tokens
  N: number;
  K: number;
  kind: "int8" | "f32";
  bias: boolean;
  accumulate: boolean;
}
const shape = (name: string, M: number, N: number, K: number, kind: "int8" | "f32", bias = false) => ({
  name,
  M,
  N,
  K,
  kind,
  bias,
  // InternLM2's wo and w2 carry the residual add (linear accumulate)
  accumulate: name === "lm.w2",
});
// InternViT-6B on 7 tiles (7·1024 patches + the class token), InternLM2-20B prefill of an 1800-token prompt.
const shapes: Shape[] = tokenCounts
  ? tokenCounts.flatMap((M) => [
    shape(`lm.wqkv.T${M}`, M, quick ? 72 : 8192, quick ? 520 : 6144, "int8"),
    shape(`lm.wo.T${M}`, M, quick ? 67 : 6144, quick ? 520 : 6144, "int8"),
    shape(`lm.w1.T${M}`, M, quick ? 130 : 16384, quick ? 520 : 6144, "int8"),
    { ...shape(`lm.w2.T${M}`, M, quick ? 67 : 6144, quick ? 1040 : 16384, "int8"), accumulate: true },
  ])
  : quick
  ? [
    shape("odd.a", 130, 129, 264, "int8", true),
    shape("odd.b", 37, 200, 100, "f32"),
    shape("lm.w2", 300, 260, 520, "int8"),
    shape("odd.c", 70, 129, 30, "f32", true),
  ]
  : [
    shape("vit.fc1", 7175, 12800, 3200, "int8", true),
    shape("vit.fc2", 7175, 3200, 12800, "int8", true),
    shape("vit.qkv", 7175, 9600, 3200, "int8", true),
    shape("vit.proj", 7175, 3200, 3200, "int8", true),
    shape("lm.wqkv", 1800, 8192, 6144, "int8"),
    shape("lm.w1", 1800, 16384, 6144, "int8"),
    shape("lm.w2", 1800, 6144, 16384, "int8"),
    shape("lm.wqkv.T64", 64, 8192, 6144, "int8"),
    shape("vit.patch.f32", 7168, 3200, 588, "f32", true),
    shape("vit.proj.f32", 7175, 3200, 3200, "f32", true),
  ];
const selected = shapes.filter((s) => !args.only || args.only.split(",").includes(s.name));
const tilingIndices = new Set(
  args.tilings?.split(",").flatMap((part) => {
    const [a, b = a] = part.split("-").map(Number);
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b >= tiledConfigs.length || a > b) {
      throw new Error(
        `--tilings ${part}: expected indices 0–${tiledConfigs.length - 1} or ranges like 10-18`,
      );
    }
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }) ?? tiledConfigs.keys(),
);
const timedTilings = tiledConfigs.filter((_, i) => tilingIndices.has(i));

const { gpu, timer } = await sweep.openGpu();

interface Row {
  shape: string;
  M: number;
  N: number;
  K: number;
  kind: string;
  kernel: string;
  ms: number;
  tflops: number;
  nerr: number;
  dispatches: number;
}
const rows: Row[] = [];

/** One launch of a candidate: out (+)= x·Wᵀ (+ bias). */
type Launch = (r: Recorder, w: LinearWeights, x: Tensor, out: Tensor, accumulate: boolean) => void;

/** The kernel before this change: 128×128 tiles, scalar loads; same bindings and params. */
const baseline: Launch = (r, w, x, out, accumulate) => {
  const [T, K] = x.shape, N = w.weight.shape[0];
  const scale = w.kind === "int8" ? w.scale : null;
  const scaleOrAny = scale ?? w.bias ?? x;
  r.dispatch("linear_tiled_baseline", {
    bindings: [x, w.weight, scaleOrAny, w.bias ?? scaleOrAny, out],
    params: [
      T,
      N,
      K,
      w.kind === "int8" ? Math.ceil(K / 4) : K,
      scale ? 1 : 0,
      w.bias ? 1 : 0,
      accumulate ? 1 : 0,
    ],
    workgroups: [Math.ceil(N / 128), Math.ceil(T / 128)],
    constants: { INT8: w.kind === "int8" ? 1 : 0 },
    label: "linear_tiled_baseline",
  });
};

const tiled = (c: TiledConfig, splits = 1): Launch => (r, w, x, out, accumulate) =>
  recordLinear(r, x, w, out, "tiled", {
    accumulate,
    tiled: c,
    splitK: splits > 1 ? splitScratch : null,
    splits,
  });
// Split-K partials: the most any candidate asks for.
const splitScratch = gpu.createTensor(
  "bench_gemm.split_k",
  "f32",
  [Math.max(1, ...splitCounts) * Math.max(...shapes.map((s) => s.M * s.N))],
);

let seed = 1;
const destroy = (ts: (Tensor | null)[]) => ts.forEach((t) => t?.buffer.destroy());

for (const s of selected) {
  const { M, N, K } = s;
  const flops = 2 * M * N * K;
  const fill = gpu.recorder(`bench_gemm.fill ${s.name}`);
  const copies = quick ? 1 : 2;
  const sets: LinearWeights[] = [];
  for (let i = 0; i < copies; i++) {
    const weight = gpu.createTensor(`${s.name}.${i}.weight`, s.kind === "int8" ? "i8x4" : "f32", [N, K]);
    fillRandom(fill, weight, { seed: seed++, lo: -0.05, hi: 0.05 });
    const bias = s.bias ? gpu.createTensor(`${s.name}.${i}.bias`, "f32", [N]) : null;
    if (bias) fillRandom(fill, bias, { seed: seed++ });
    if (s.kind === "int8") {
      const scale = gpu.createTensor(`${s.name}.${i}.scale`, "f32", [N]);
      fillRandom(fill, scale, { seed: seed++, lo: 0.0002, hi: 0.002 });
      sets.push({ kind: "int8", weight, scale, bias });
    } else sets.push({ kind: "f32", weight, bias });
  }
  const x = gpu.createTensor(`${s.name}.x`, "f32", [M, K]);
  fillRandom(fill, x, { seed: seed++ });
  const out = gpu.createTensor(`${s.name}.out`, "f32", [M, N]);
  fill.submit();
  await gpu.sync(`filling ${s.name}`);

  const chosen = tiledConfig(M, N, K, s.kind === "f32");
  // A weight-only prompt of ≤ 64 rows runs as chunks of 8 through the matrix-vector kernel (lm_runner.ts):
  // the same 8 rows n times here (their output is checked as the first 8 rows of the result).
  const chunks = Math.ceil(M / 8);
  const x8 = tokenCounts && M <= 64 ? frontView(x, [Math.min(8, M), K]) : null;
  const out8 = x8 ? frontView(out, [x8.shape[0], N]) : null;
  const candidates: [string, Launch][] = [
    ["baseline", baseline],
    ...timedTilings.flatMap((c) =>
      splitCounts.map((n): [string, Launch] => [`${tiledConfigName(c)}${n > 1 ? ` s${n}` : ""}`, tiled(c, n)])
    ),
    ...(x8 && out8
      ? [[`matvec ×${chunks}`, (r, w, _x, _out, accumulate) => {
        for (let i = 0; i < chunks; i++) recordLinear(r, x8, w, out8, "matvec", { accumulate });
      }] as [string, Launch]]
      : []),
  ];
  let ref: Float32Array | null = null;
  for (const [name, launch] of candidates) {
    try {
      // Correctness: one launch without accumulation, compared with the baseline's output.
      const chk = gpu.recorder("check");
      launch(chk, sets[0], x, out, false);
      chk.submit();
      const got = await sweep.readRows(gpu, out, N, sweep.sampleRows(M));
      ref ??= got;
      const { nerr } = sweep.compareOutputs(got, ref);

      // Timing: calibrate D (dispatches per pass) and the pass count on one pass, then time.
      const t = await sweep.timeCandidate(gpu, timer, {
        name,
        cacheLabel: `bench_gemm.${name}`,
        recorderLabel: `bench_gemm ${s.name} ${name}`,
        launch: (r, d, p, D) => launch(r, sets[(p * D + d) % copies], x, out, s.accumulate),
        warmupDispatches: 1,
        plan: async (calibrate) => {
          const first = (await calibrate(1, 1)).ms;
          const D = sweep.clamp(Math.ceil(2 / first), 1, 200);
          return { dispatches: D, passes: sweep.passesFor(minMs, D, first, 3, 1000) };
        },
        checkStamped: false,
        checkLabel: `${s.name} ${name}`,
      });
      const { ms, dispatches: D, passes } = t;
      const row: Row = {
        shape: s.name,
        M,
        N,
        K,
        kind: s.kind,
        kernel: name,
        ms,
        tflops: flops / (ms * 1e9),
        nerr,
        dispatches: D * passes,
      };
      rows.push(row);
      const mark = name === tiledConfigName(chosen) ? "*" : " ";
      console.log(
        `${s.name.padEnd(14)} M=${M} N=${N} K=${K} ${s.kind.padEnd(4)} ${mark}${name.padEnd(24)}` +
          `${ms.toFixed(3).padStart(9)} ms ${row.tflops.toFixed(2).padStart(6)} TFLOP/s  ` +
          sweep.errorColumns(nerr, 1e-8),
      );
    } catch (e) {
      sweep.logFailure(`${s.name} ${name}`, e);
    }
  }
  destroy([x, out, ...sets.flatMap((w) => [w.weight, w.bias, w.kind === "int8" ? w.scale : null])]);
}

// Per shape: baseline, the launcher's tiling (*) and the fastest; then each tiling's total time over the
// vision and LLM shapes (the figure to pick `tiledConfig` by).
console.log("\nSummary");
const ok = (r: Row) => r.nerr <= 1e-8;
for (const s of selected) {
  const rs = rows.filter((r) => r.shape === s.name && ok(r));
  const base = rs.find((r) => r.kernel === "baseline");
  const chosen = rs.find((r) => r.kernel === tiledConfigName(tiledConfig(s.M, s.N, s.K, s.kind === "f32")));
  const best = rs.filter((r) => r.kernel !== "baseline").sort((a, b) => a.ms - b.ms)[0];
  if (!base || !best) continue;
  const fmt = (r: Row) => `${r.ms.toFixed(2)} ms ${r.tflops.toFixed(1)} TFLOP/s`;
  console.log(
    `${s.name.padEnd(14)} baseline ${fmt(base)} | launcher ${chosen ? fmt(chosen) : "—"}` +
      ` | best ${best.kernel} ${fmt(best)} ×${(base.ms / best.ms).toFixed(2)}`,
  );
}
for (const group of ["vit.", "lm."]) {
  const groupShapes = selected.filter((s) => s.name.startsWith(group) && s.kind === "int8" && s.M > 64);
  if (groupShapes.length === 0) continue;
  const totals = [...new Set(rows.map((r) => r.kernel))].map((k) => {
    const rs = rows.filter((r) => r.kernel === k && ok(r) && groupShapes.some((s) => s.name === r.shape));
    return { k, ms: rs.length === groupShapes.length ? rs.reduce((a, r) => a + r.ms, 0) : Infinity };
  }).filter((t) => Number.isFinite(t.ms)).sort((a, b) => a.ms - b.ms);
  console.log(
    `${group}* int8 (${groupShapes.map((s) => s.name).join(", ")}): ` +
      totals.map((t) => `${t.k} ${t.ms.toFixed(2)} ms`).join(" | "),
  );
}
splitScratch.buffer.destroy();
await sweep.writeJson(outArg, "gemm.json", { adapter: gpu.adapterDescription, minMs, rows });
gpu.destroy();
