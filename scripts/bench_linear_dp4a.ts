// Times bitsandbytes' LLM.int8 matrix multiply (src/ops/llm_int8.ts: outlier flags, int8 rows, the
// dot4I8Packed GEMM of kernels/linear_dp4a.wgsl) against the model's exact int8 path (recordLinear "tiled":
// kernels/linear_tiled.wgsl, weights widened to f32), at the prefill / vision shapes of
// InternVL-Chat-V1.5, in the same run on the same inputs:
//   deno run -A scripts/bench_linear_dp4a.ts [--small] [--ms 200] [--only vit.fc1,lm.w2] [--configs 0,1,2]
//     [--outliers 8] [--heads 64,0] [--dist uniform|natural] [--ballast GB] [--lm-tokens 1800]
//     [--splits 1,4,8] [--out linear_dp4a.json]
// Candidates per shape: "f32 linear_tiled" (the model today); "llm.int8 <tiling>" (all four dispatches of
// recordLinearLlmInt8); "dp4a gemm <tiling>" (kernels/linear_dp4a.wgsl alone, from int8 rows made once);
// "outliers+quantize" (the three dispatches before the GEMM; GB/s of x read twice and q written).
// --configs: indices into `dp4aTilings` (ranges a-b; default 0-3). --splits: split counts of K for both
// LLM.int8 candidates (default: `dp4aSplits`'s choice, named "auto"). TFLOP/s counts 2·T·N·K for every
// candidate, the prologue included.
// Inputs: random int8 weights filled on the GPU (src/bench/synthetic_weights.ts), x uniform in ±3 with
// --outliers columns (default 8) holding one |x| ≥ 6 value each, so the GEMM's epilogue walks that many
// columns as it would for real activations. Outputs are compared with the f32 path over the first and last
// rows (normalised error Σ(a−b)²/Σb²): for LLM.int8 that is the int8 rounding of x (~1e-5), not a bug —
// tests/kernels/llm_int8_test.ts checks the kernels exactly; GEMM alone must equal all passes.
// Timing: GPU timestamps around passes of D back-to-back calls (D·time ≳ 2 ms), passes enough for ≥ --ms
// per candidate (src/bench/sweep.ts); calls alternate between two weight copies.
// --small: T = 37 (vision) and 19 (LLM) with N and K divided by 8, short timings: a smoke run on llvmpipe.
import type { Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { gelu } from "../src/ops/gelu.ts";
import { siluMul } from "../src/ops/silu_mul.ts";
import {
  type LinearWeights,
  recordLinear,
  tiledConfig,
  tiledConfigName,
  tileGrid,
} from "../src/ops/linear.ts";
import {
  dp4aPartsWords,
  dp4aTileWords,
  dp4aTiling,
  dp4aTilingName,
  dp4aTilings,
  languageOutlierCap,
  linearDp4a,
  llmInt8Gather,
  llmInt8Outliers,
  llmInt8Quantize,
  LlmInt8Scratch,
  llmInt8Threshold,
  paddedK,
  recordLinearLlmInt8,
  visionOutlierCap,
} from "../src/ops/llm_int8.ts";
import { SyntheticFactory } from "../src/bench/synthetic_weights.ts";
import * as sweep from "../src/bench/sweep.ts";

const { args, quick, minMs, out: outArg } = sweep.parseArgs({
  small: { type: "boolean", default: false },
  only: { type: "string" },
  configs: { type: "string" },
  outliers: { type: "string" },
  heads: { type: "string" },
  dist: { type: "string" },
  ballast: { type: "string" },
  "lm-tokens": { type: "string" },
  splits: { type: "string" },
}, 20);
const small = Boolean(args.small) || quick;
const outlierColumns = Number(args.outliers ?? 8);
if (!(Number.isInteger(outlierColumns) && outlierColumns >= 0)) {
  throw new Error(`--outliers ${args.outliers}: expected a whole number of columns`);
}
// --dist natural: the inputs of the shapes that follow an activation (vit.fc2, lm.w2) are made the way the
// model makes them from random weights, gelu(fc1(x)) and silu(w1(x))·w3(x) of x uniform in ±√3 (unit
// variance, as after a norm), instead of uniform with --outliers columns; their outlier columns are what
// the activation gives. The other shapes stay uniform.
const natural = (args.dist ?? "uniform") === "natural";
if (!["uniform", "natural"].includes(args.dist ?? "uniform")) {
  throw new Error(`--dist ${args.dist}: expected uniform or natural`);
}
// --heads: the epilogue's share of the outlier columns to time (the rest go to the outlier GEMM).
const heads = args.heads === undefined ? [undefined] : args.heads.split(",").map((h) => {
  const v = Number(h);
  if (!(Number.isInteger(v) && v >= 0 && v % 4 === 0)) {
    throw new Error(`--heads ${h}: expected multiples of 4`);
  }
  return v;
});

interface Shape {
  name: string;
  T: number;
  N: number;
  K: number;
  bias: boolean;
  accumulate: boolean; // the layer carries the residual add (linear accumulate)
}
const div = small ? 8 : 1;
const shape = (name: string, T: number, K: number, N: number, bias: boolean, accumulate = false): Shape => ({
  name,
  T,
  N: N / div,
  K: K / div,
  bias,
  accumulate,
});
// InternViT-6B on 7 tiles (7·1025 tokens with the class tokens), InternLM2-20B prefill of 1800 tokens.
// --lm-tokens: the LLM shapes' rows (default: an 1800-token prompt; 31: a follow-up round's new tokens).
const vitT = small ? 37 : 7175, lmT = Number(args["lm-tokens"] ?? (small ? 19 : 1800));
if (!(Number.isInteger(lmT) && lmT >= 1)) throw new Error(`--lm-tokens ${args["lm-tokens"]}: a whole number`);
const shapes: Shape[] = [
  shape("vit.qkv", vitT, 3200, 9600, false),
  shape("vit.proj", vitT, 3200, 3200, true),
  shape("vit.fc1", vitT, 3200, 12800, true),
  shape("vit.fc2", vitT, 12800, 3200, true),
  shape("lm.wqkv", lmT, 6144, 8192, false),
  shape("lm.wo", lmT, 6144, 6144, false, true),
  shape("lm.w1", lmT, 6144, 16384, false),
  shape("lm.w2", lmT, 16384, 6144, false, true),
];
const selected = shapes.filter((s) => !args.only || args.only.split(",").includes(s.name));
const configIndices = [
  ...new Set(
    (args.configs ?? "0-3").split(",").flatMap((part) => {
      const [a, b = a] = part.split("-").map(Number);
      if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b >= dp4aTilings.length || a > b) {
        throw new Error(`--configs ${part}: expected indices 0–${dp4aTilings.length - 1} or ranges like 0-3`);
      }
      return Array.from({ length: b - a + 1 }, (_, i) => a + i);
    }),
  ),
];
const tilings = configIndices.map((i) => dp4aTilings[i]);
const splitCounts: (number | undefined)[] = args.splits === undefined
  ? [undefined]
  : args.splits.split(",").map(
    (v) => {
      const n = Number(v);
      if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--splits ${v}: expected whole counts ≥ 1`);
      return n;
    },
  );
const splitName = (n: number | undefined) => n === undefined ? "" : ` s${n}`;

const { gpu, timer } = await sweep.openGpu();
// --ballast GB: that much GPU memory allocated and written first, in 128 MiB buffers (llvmpipe's binding
// limit; the model's tensors are ~100 MB) kept to the end, so the timed buffers sit where they would beside
// the model's 26 GB of weights (address translation).
const ballastGiB = Number(args.ballast ?? 0);
if (!(Number.isInteger(ballastGiB) && ballastGiB >= 0)) {
  throw new Error(`--ballast ${args.ballast}: whole GiB`);
}
const ballast: Tensor[] = [];
for (let i = 0; i < 8 * ballastGiB; i++) {
  const r = gpu.recorder("ballast");
  const t = gpu.createTensor(`ballast.${i}`, "f32", [32, 1 << 20]);
  fillRandom(r, t, { seed: 1000 + i, lo: -1, hi: 1 });
  r.submit();
  ballast.push(t);
}
if (ballastGiB) await gpu.sync("ballast");
console.log(
  `linear_dp4a binds 9 storage buffers; this device allows ${gpu.limits.maxStorageBuffersPerShaderStage}. ` +
    `Tilings: ${configIndices.map((i) => `${i} ${dp4aTilingName(dp4aTilings[i])}`).join(" | ")}`,
);

interface Row {
  shape: string;
  T: number;
  N: number;
  K: number;
  kernel: string;
  us: number;
  usMin: number;
  tflops: number;
  nerr: number; // against the f32 path's output
  GBps: number | null; // outliers+quantize only: x read twice, q written, over the time
  calls: number;
}
const rows: Row[] = [];

/** One call of a candidate on weight copy `w`: out (+)= x·Wᵀ (+ bias), or a part of it. */
type Launch = (r: Recorder, w: LinearWeights, accumulate: boolean) => void;

let seed = 1;
for (const s of selected) {
  const { T, N, K } = s;
  const flops = 2 * T * N * K;
  const fill = gpu.recorder(`bench_linear_dp4a.fill ${s.name}`);
  const factory = new SyntheticFactory(gpu, fill, seed++);
  const copies = small ? 1 : 2;
  const sets = Array.from({ length: copies }, (_, i) => factory.int8Linear(`${s.name}.${i}`, N, K, s.bias));
  const x = gpu.createTensor(`${s.name}.x`, "f32", [T, K]);
  const temps: Tensor[] = []; // the activation's inputs, freed once x is made
  const activated = natural && ["vit.fc2", "lm.w2"].includes(s.name);
  if (activated) {
    // The layer before this one, from inputs of unit variance: fc1 (+ bias) then gelu, or w1 and w3 then
    // silu(w1)·w3, all through the exact f32 path.
    const D = s.name === "lm.w2" ? (small ? 768 : 6144) : (small ? 400 : 3200);
    const x0 = gpu.createTensor(`${s.name}.x0`, "f32", [T, D]);
    fillRandom(fill, x0, { seed: seed++, lo: -Math.sqrt(3), hi: Math.sqrt(3) });
    const h = gpu.createTensor(`${s.name}.h`, "f32", [T, K]);
    if (s.name === "vit.fc2") {
      recordLinear(fill, x0, factory.int8Linear(`${s.name}.fc1`, K, D, true), h, "tiled");
      gelu(fill, h, x);
    } else {
      const u = gpu.createTensor(`${s.name}.u`, "f32", [T, K]);
      recordLinear(fill, x0, factory.int8Linear(`${s.name}.w1`, K, D), h, "tiled");
      recordLinear(fill, x0, factory.int8Linear(`${s.name}.w3`, K, D), u, "tiled");
      siluMul(fill, h, u, x);
      temps.push(u);
    }
    temps.push(x0, h);
  } else {
    fillRandom(fill, x, { seed: seed++, lo: -3, hi: 3 });
  }
  const out = gpu.createTensor(`${s.name}.out`, "f32", [T, N]);
  // The model's cap, or more for more --outliers columns.
  const cap = Math.max(
    s.name.startsWith("lm.") ? languageOutlierCap : visionOutlierCap,
    4 * Math.ceil(outlierColumns / 4),
  );
  // Parts for the most splits asked for (or the model's sizing), with any tiling.
  const partsWords = Math.max(
    dp4aPartsWords(T, K, N),
    ...tilings.map((c) => {
      const [cols, rows] = tileGrid(c, T, N);
      return Math.max(0, ...splitCounts.map((n) => (n ?? 1) * cols * rows * dp4aTileWords(c)));
    }),
  );
  const scratch = new LlmInt8Scratch(gpu, `${s.name}.llm_int8`, T, K, N, cap, partsWords);
  // The GEMM-alone candidates read compact outlier columns gathered once from the first weight copy (their
  // outlier sums are off for the second copy: timing only; the comparison below uses the first).
  const w0 = sets[0];
  fill.submit();
  // One value ≥ θ in each outlier column (row 0 or the last row): the column is flagged for every row.
  for (let i = 0; i < (activated ? 0 : Math.min(outlierColumns, K)); i++) {
    const c = Math.floor((i + 0.5) * K / outlierColumns), t = i % 2 ? T - 1 : 0;
    gpu.writeTensor(x, Float32Array.of(i % 2 ? -20 : 20), (t * K + c) * 4);
  }
  // The int8 rows the GEMM-alone candidates start from.
  const prep = gpu.recorder("prep");
  llmInt8Outliers(prep, x, scratch.flags, llmInt8Threshold);
  const views = scratch.views(T, K, N);
  llmInt8Quantize(prep, x, views, llmInt8Threshold);
  if (w0.kind === "int8") llmInt8Gather(prep, x, views, w0);
  prep.submit();
  await gpu.sync(`filling ${s.name}`);
  temps.forEach((t) => t.buffer.destroy());
  const flagged = (await gpu.readU32(scratch.outliers))[0];

  const candidates: [string, Launch][] = [
    ["f32 linear_tiled", (r, w, acc) => recordLinear(r, x, w, out, "tiled", { accumulate: acc })],
    ...tilings.flatMap((tiling) =>
      splitCounts.flatMap((splits): [string, Launch][] => [
        ...heads.map((head): [string, Launch] => [
          `llm.int8 ${dp4aTilingName(tiling)}${splitName(splits)}${
            head === undefined ? "" : ` head ${head}`
          }`,
          (r, w, acc) =>
            recordLinearLlmInt8(r, x, w, out, scratch, {
              accumulate: acc,
              tiling,
              epilogueColumns: head,
              splits,
            }),
        ]),
        // Head 0: the int8 product alone (its epilogue leaves every outlier column to the outlier GEMM, so
        // the output is a part: "(part)" instead of MISMATCH below).
        ...heads.map((head): [string, Launch] => [
          `dp4a gemm ${dp4aTilingName(tiling)}${splitName(splits)}${
            head === undefined ? "" : ` head ${head}`
          }`,
          (r, w, acc) => {
            if (w.kind !== "int8") throw new Error("int8 weights expected");
            linearDp4a(r, x, views, w, out, { accumulate: acc, tiling, epilogueColumns: head, splits });
          },
        ]),
      ])
    ),
    ["outliers+quantize+gather", (r, w) => {
      if (w.kind !== "int8") throw new Error("int8 weights expected");
      llmInt8Outliers(r, x, views.flags);
      llmInt8Quantize(r, x, views);
      llmInt8Gather(r, x, views, w);
    }],
  ];
  console.log(
    `\n${s.name} T=${T} N=${N} K=${K}${s.bias ? " bias" : ""}${s.accumulate ? " accumulate" : ""}: ` +
      `${flagged} outlier columns; f32 path tiling ${tiledConfigName(tiledConfig(T, N, K))}, ` +
      `default dp4a tiling ${dp4aTilingName(dp4aTiling(T, N, K))}`,
  );
  let ref: Float32Array | null = null;
  for (const [name, launch] of candidates) {
    try {
      // Correctness: one call without accumulation, compared with the f32 path's output.
      let nerr = NaN;
      if (!name.startsWith("outliers")) {
        sweep.launchOnce(gpu, "check", (r) => {
          // The compact outlier weights of the first copy: a timed LLM.int8 candidate may have left the
          // second's there.
          if (w0.kind === "int8") llmInt8Gather(r, x, views, w0);
          launch(r, sets[0], false);
        });
        const got = await sweep.readRows(gpu, out, N, sweep.sampleRows(T));
        ref ??= got;
        nerr = sweep.compareOutputs(got, ref).nerr;
      }
      const t = await sweep.timeCandidate(gpu, timer, {
        name,
        cacheLabel: `bench_linear_dp4a.${name}`,
        recorderLabel: `bench_linear_dp4a ${s.name} ${name}`,
        launch: (r, d, p, D) => launch(r, sets[(p * D + d) % copies], s.accumulate),
        warmupDispatches: 1,
        plan: async (calibrate) => {
          if (small) return { dispatches: 1, passes: 2 };
          const first = (await calibrate(1, 1)).ms;
          const D = sweep.clamp(Math.ceil(2 / first), 1, 200);
          return { dispatches: D, passes: sweep.passesFor(minMs, D, first, 3, 1000) };
        },
        checkStamped: false,
        checkLabel: `${s.name} ${name}`,
      });
      const row: Row = {
        shape: s.name,
        T,
        N,
        K,
        kernel: name,
        us: t.ms * 1e3,
        usMin: t.msMin * 1e3,
        tflops: flops / (t.ms * 1e9),
        nerr,
        GBps: name.startsWith("outliers") ? (2 * T * K * 4 + T * paddedK(K)) / (t.ms * 1e6) : null,
        calls: t.dispatches * t.passes,
      };
      rows.push(row);
      const err = Number.isNaN(nerr)
        ? ""
        : `  nerr vs f32 ${nerr.toExponential(1)}${
          nerr <= 1e-3 ? "" : / head \d+$/.test(name) && name.startsWith("dp4a") ? "  (part)" : "  MISMATCH"
        }`;
      const rate = row.GBps === null
        ? `${row.tflops.toFixed(2).padStart(7)} TFLOP/s`
        : `${row.GBps.toFixed(0).padStart(7)} GB/s`;
      console.log(`  ${name.padEnd(34)} ${row.us.toFixed(1).padStart(10)} µs ${rate}${err}`);
    } catch (e) {
      sweep.logFailure(`${s.name} ${name}`, e);
    }
  }
  factory.destroyAll();
  scratch.destroy();
  for (const t of [x, out]) t.buffer.destroy();
}

// Per shape: the f32 path, the fastest LLM.int8 tiling (all passes) and its GEMM alone; then each tiling's
// total over the vision and the LLM shapes (the figure to pick `dp4aTiling` by).
console.log("\nSummary (µs; ×: f32 path time / LLM.int8 time)");
const fmt = (r: Row) => `${r.us.toFixed(0)} µs ${r.tflops.toFixed(1)} TFLOP/s`;
for (const s of selected) {
  const rs = rows.filter((r) => r.shape === s.name);
  const f32 = rs.find((r) => r.kernel === "f32 linear_tiled");
  const best = (prefix: string) =>
    rs.filter((r) => r.kernel.startsWith(prefix)).sort((a, b) => a.us - b.us)[0];
  const all = best("llm.int8 "), gemm = best("dp4a gemm ");
  if (!f32 || !all || !gemm) continue;
  console.log(
    `${s.name.padEnd(9)} f32 ${fmt(f32)} | ${all.kernel} ${fmt(all)} ×${(f32.us / all.us).toFixed(2)} | ` +
      `gemm alone ${fmt(gemm)}`,
  );
}
for (const group of ["vit.", "lm."]) {
  const groupShapes = selected.filter((s) => s.name.startsWith(group));
  if (groupShapes.length === 0) continue;
  const totals = [...new Set(rows.map((r) => r.kernel))].filter((k) => !k.startsWith("outliers")).map((k) => {
    const rs = rows.filter((r) => r.kernel === k && groupShapes.some((s) => s.name === r.shape));
    return { k, us: rs.length === groupShapes.length ? rs.reduce((a, r) => a + r.us, 0) : Infinity };
  }).filter((t) => Number.isFinite(t.us)).sort((a, b) => a.us - b.us);
  console.log(`${group}* total: ${totals.map((t) => `${t.k} ${t.us.toFixed(0)} µs`).join(" | ")}`);
}
await sweep.writeJson(outArg, "linear_dp4a.json", {
  adapter: gpu.adapterDescription,
  timing: timer.method,
  minMs,
  small,
  outlierColumns,
  tilings: Object.fromEntries(configIndices.map((i) => [i, dp4aTilings[i]])),
  rows,
});
gpu.destroy();
