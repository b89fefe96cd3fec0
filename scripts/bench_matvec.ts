// Times the decode matvec kernels on the real InternLM2-20B decode shapes, every candidate tiling of
// kernels/matvec_i8.wgsl against the kernels it replaces (linear_matvec, rms_norm_linear, gate_up_silu),
// at T = 1, 4 and 8, with a WGSL copy kernel as the bandwidth reference of the same run.
//   deno run -A scripts/bench_matvec.ts [--quick] [--ms 200] [--out matvec.json] [--only wqkv,wo,…]
//     [--tokens 1,4,8] [--configs "R4 L16 U1 vec,R2 L16 U4": only these candidates, by name]
//     [--chosen: the launchers' own tiling only] [--probe: the launchers' tiling, its
//     dot-product-and-add form (DOT_ADD) and its probes (wrong values, for timing only): PROBE 1 loads one
//     token's x for every token's math, PROBE 2 loads every token's x for one token's math, PROBE 3 loads
//     no weights]
// Timing: GPU timestamps around passes of D back-to-back dispatches (D·time ≈ 4 ms), ≥ --ms per candidate;
// the dispatches rotate over enough weight copies (> 150 MB) that no layer is served from the 50 MB L2.
// Every candidate's output is compared with the old kernel's (normalised error Σ(a−b)²/Σb²).
// --quick: tiny odd shapes and few repetitions (a correctness smoke run on llvmpipe).
import type { Gpu } from "../src/gpu/device.ts";
import { f32 } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { type MatvecConfig, matvecConfig, type MatvecMode, recordMatvecI8 } from "../src/ops/matvec_i8.ts";
import { linear, type LinearWeights } from "../src/ops/linear.ts";
import { rmsNormLinear } from "../src/ops/rms_norm_linear.ts";
import { gateUpSilu } from "../src/ops/gate_up_silu.ts";
import { copyReference, type LinearSweepRow, rateLine } from "../src/bench/linear_sweep.ts";
import * as sweep from "../src/bench/sweep.ts";

const { args, quick, minMs, out: outArg } = sweep.parseArgs({
  only: { type: "string" },
  chosen: { type: "boolean", default: false },
  probe: { type: "boolean", default: false },
  tokens: { type: "string" },
  configs: { type: "string" },
});

interface Shape {
  name: string;
  mode: MatvecMode;
  N: number;
  K: number;
}
const shapes: Shape[] = quick
  ? [
    { name: "norm", mode: "norm", N: 300, K: 264 },
    { name: "linear", mode: "linear", N: 250, K: 520 },
    { name: "gate_up", mode: "gateUp", N: 333, K: 136 },
  ]
  : [
    { name: "wqkv", mode: "norm", N: 8192, K: 6144 },
    { name: "wo", mode: "linear", N: 6144, K: 6144 },
    { name: "gate_up", mode: "gateUp", N: 16384, K: 6144 },
    { name: "w2", mode: "linear", N: 6144, K: 16384 },
    { name: "head", mode: "norm", N: 92553, K: 6144 },
  ].filter((s) => !args.only || args.only.split(",").includes(s.name)) as Shape[];
const tokens = args.tokens ? args.tokens.split(",").map(Number) : [1, 4, 8];

/** Candidate tilings; R = 8 is skipped for gateUp (its hi rows are W3's). */
const configs: MatvecConfig[] = [
  { R: 4, LANES: 32, U: 4, I2F: true },
  { R: 4, LANES: 32, U: 4 },
  { R: 2, LANES: 32, U: 4 },
  { R: 8, LANES: 32, U: 2 },
  { R: 1, LANES: 32, U: 8 },
  { R: 4, LANES: 16, U: 2 },
  { R: 2, LANES: 16, U: 4 },
  { R: 2, LANES: 64, U: 4 },
  { R: 4, LANES: 64, U: 2 },
  { R: 4, LANES: 64, U: 4 },
  { R: 8, LANES: 64, U: 2 },
  { R: 2, LANES: 128, U: 4 },
  { R: 4, LANES: 128, U: 2 },
  { R: 1, LANES: 256, U: 4 },
  { R: 2, LANES: 256, U: 2 },
  { R: 4, LANES: 256, U: 1 },
  { R: 4, LANES: 256, U: 2 },
  { R: 4, LANES: 32, U: 4, persist: 264 },
  { R: 4, LANES: 32, U: 4, persist: 528 },
  { R: 2, LANES: 32, U: 4, persist: 528 },
  { R: 1, LANES: 32, U: 8, persist: 528 },
  { R: 1, LANES: 32, U: 8, persist: 1056 },
  // 16-byte weight loads (VEC; U > 1: two chunks in flight).
  { R: 4, LANES: 32, U: 1, VEC: true },
  { R: 4, LANES: 32, U: 2, VEC: true },
  { R: 4, LANES: 16, U: 2, VEC: true },
  { R: 4, LANES: 8, U: 2, VEC: true },
  { R: 2, LANES: 32, U: 2, VEC: true },
  { R: 2, LANES: 16, U: 2, VEC: true },
  { R: 1, LANES: 32, U: 2, VEC: true },
  { R: 1, LANES: 16, U: 2, VEC: true },
  { R: 8, LANES: 32, U: 1, VEC: true },
  { R: 4, LANES: 64, U: 2, VEC: true },
  { R: 4, LANES: 32, U: 1, VEC: true, persist: 264 },
  { R: 4, LANES: 32, U: 2, VEC: true, persist: 264 },
  { R: 2, LANES: 32, U: 2, VEC: true, persist: 528 },
  { R: 1, LANES: 32, U: 2, VEC: true, persist: 528 },
  { R: 1, LANES: 16, U: 2, VEC: true, persist: 1056 },
  { R: 4, LANES: 16, U: 1, VEC: true },
  { R: 8, LANES: 16, U: 1, VEC: true },
  { R: 2, LANES: 8, U: 2, VEC: true },
  { R: 2, LANES: 16, U: 1, VEC: true },
  { R: 4, LANES: 16, U: 1, VEC: true, persist: 264 },
  { R: 4, LANES: 16, U: 2, VEC: true, persist: 264 },
  { R: 4, LANES: 16, U: 2, VEC: true, persist: 528 },
];
const configName = (c: MatvecConfig) =>
  `R${c.R} L${c.LANES} U${c.U}${c.I2F ? " i2f" : ""}${c.VEC ? " vec" : ""}${
    c.persist ? ` P${c.persist}` : ""
  }`;

const { gpu, timer } = await sweep.openGpu();
const copyGBps = await copyReference(gpu, timer, quick);

/** A sweep row; every candidate here is compared with the old kernel, so nerr is always a number. */
type Row = LinearSweepRow & { nerr: number };
const rows: Row[] = [];

interface Set {
  w1: Tensor;
  s1: Tensor;
  w3: Tensor | null;
  s3: Tensor | null;
}

/** One launch of candidate `c` (null: the kernel in use before matvec_i8). */
type Launch = (r: ReturnType<Gpu["recorder"]>, set: Set, x: Tensor, out: Tensor, accumulate: boolean) => void;

/** The kernel in use before matvec_i8; `dotAdd`: linear_matvec with its benchmark-only DOT_ADD form. */
function beforeLaunch(s: Shape, T: number, dotAdd = false): Launch {
  return (r, set, x, out, accumulate) => {
    const { N, K } = s;
    if (s.mode === "linear") {
      const groups = Math.ceil(N / 8);
      r.dispatch("linear_matvec", {
        bindings: [x, set.w1, set.s1, set.s1, out],
        params: [N, K / 4, K / 4, 1, 0, groups, accumulate ? 1 : 0],
        workgroups: [groups, 1],
        constants: { INT8: 1, TT: T, DOT_ADD: dotAdd ? 1 : 0 },
        label: "before linear_matvec",
      });
    } else if (s.mode === "norm") {
      const groups = Math.ceil(N / 16);
      r.dispatch("rms_norm_linear", {
        bindings: [x, g!, set.w1, set.s1, set.s1, out],
        params: [N, K / 4, f32(1e-5), 0, groups],
        workgroups: [groups, 1],
        constants: { TT: T, RPW: 2 },
        label: "before rms_norm_linear",
      });
    } else {
      const groups = Math.ceil(N / 8);
      r.dispatch("gate_up_silu", {
        bindings: [x, g!, set.w1, set.s1, set.w3!, set.s3!, out],
        params: [N, K / 4, f32(1e-5), groups],
        workgroups: [groups, 1],
        constants: { TT: T },
        label: "before gate_up_silu",
      });
    }
  };
}

function newLaunch(s: Shape, c: MatvecConfig): Launch {
  return (r, set, x, out, accumulate) =>
    recordMatvecI8(r, {
      mode: s.mode,
      x,
      g,
      w1: set.w1,
      s1: set.s1,
      w3: set.w3,
      s3: set.s3,
      bias: null,
      out,
      eps: 1e-5,
      accumulate: s.mode === "linear" && accumulate,
      config: c,
      label: s.name,
    });
}

/** The public launcher (linear, rmsNormLinear, gateUpSilu) with the tiling it picks itself. */
function chosenLaunch(s: Shape): Launch {
  const lw = (w: Tensor, scale: Tensor): LinearWeights => ({ kind: "int8", weight: w, scale, bias: null });
  return (r, set, x, out, accumulate) => {
    if (s.mode === "linear") linear(r, x, lw(set.w1, set.s1), out, { accumulate });
    else if (s.mode === "norm") rmsNormLinear(r, x, g!, 1e-5, lw(set.w1, set.s1), out);
    else gateUpSilu(r, x, g!, 1e-5, lw(set.w1, set.s1), lw(set.w3!, set.s3!), out);
  };
}

let g: Tensor | null = null;
let seed = 1;
const destroyAll = (ts: (Tensor | null)[]) => ts.forEach((t) => t?.buffer.destroy());

for (const s of shapes) {
  const { N, K } = s;
  const weightBytes = N * K * (s.mode === "gateUp" ? 2 : 1);
  const copies = quick ? 2 : Math.max(1, Math.ceil(150e6 / weightBytes));
  const sets: Set[] = [];
  const fill = gpu.recorder(`bench_matvec.fill ${s.name}`);
  for (let i = 0; i < copies; i++) {
    const mk = (what: string) => {
      const w = gpu.createTensor(`${s.name}.${i}.${what}`, "i8x4", [N, K]);
      const sc = gpu.createTensor(`${s.name}.${i}.${what}.scale`, "f32", [N]);
      fillRandom(fill, w, { seed: seed++ });
      fillRandom(fill, sc, { seed: seed++, lo: 0.0002, hi: 0.002 });
      return [w, sc];
    };
    const [w1, s1] = mk("w1");
    const [w3, s3] = s.mode === "gateUp" ? mk("w3") : [null, null];
    sets.push({ w1, s1, w3, s3 });
  }
  g = gpu.createTensor(`${s.name}.g`, "f32", [K]);
  fillRandom(fill, g, { seed: seed++, lo: 0.5, hi: 1.5 });
  fill.submit();
  await gpu.sync(`filling ${s.name}`);

  for (const T of tokens) {
    const x = gpu.createTensor(`${s.name}.x${T}`, "f32", [T, K]);
    const out = gpu.createTensor(`${s.name}.out${T}`, "f32", [T, N]);
    const ref = gpu.createTensor(`${s.name}.ref${T}`, "f32", [T, N]);
    const init = gpu.recorder("init");
    fillRandom(init, x, { seed: seed++ });
    init.submit();
    // Minimum traffic: weights + scales once, x once, out written (read too when accumulating).
    const bytes = weightBytes + N * 4 * (s.mode === "gateUp" ? 2 : 1) + T * K * 4 +
      T * N * 4 * (s.mode === "linear" ? 2 : 1);
    const estMs = bytes / 2.5e9 * (T > 1 ? 2 : 1);
    const D = quick ? 2 : sweep.clamp(Math.ceil(4 / estMs), 1, 400);
    const passes = quick ? 2 : sweep.passesFor(minMs, D, estMs, 8, 1000);

    const candidates: [string, Launch][] = [["before", beforeLaunch(s, T)]];
    if (args.chosen || args.probe) candidates.push(["launcher", chosenLaunch(s)]);
    const chosen = matvecConfig(s.mode, T, N, K);
    if (args.probe && s.mode === "linear") candidates.push(["before dot+add", beforeLaunch(s, T, true)]);
    if (args.probe && chosen) {
      candidates.push([`dot+add ${configName(chosen)}`, newLaunch(s, { ...chosen, dotAdd: true })]);
      for (const probe of [1, 2, 3] as const) {
        candidates.push([`probe${probe} ${configName(chosen)}`, newLaunch(s, { ...chosen, probe })]);
      }
    }
    for (const c of args.chosen || args.probe ? [] : configs) {
      if (s.mode === "gateUp" && c.R > 4) continue;
      if (c.VEC && K % 16 !== 0) continue;
      if (args.configs && !args.configs.split(",").includes(configName(c))) continue;
      candidates.push([configName(c), newLaunch(s, c)]);
    }
    let refData: Float32Array | null = null;
    for (const [name, launch] of candidates) {
      try {
        // Correctness: one launch without accumulation, compared with the old kernel's output.
        const chk = gpu.recorder("check");
        launch(chk, sets[0], x, name === "before" ? ref : out, false);
        chk.submit();
        const got = await gpu.readF32(name === "before" ? ref : out);
        if (name === "before") refData = got;
        const { nerr } = sweep.compareOutputs(got, refData!);

        const t = await sweep.timeCandidate(gpu, timer, {
          name,
          cacheLabel: `bench_matvec.${name}`,
          recorderLabel: `bench_matvec ${s.name} T${T} ${name}`,
          launch: (r, d, p) => launch(r, sets[(p * D + d) % copies], x, out, true),
          warmupDispatches: D,
          plan: () => ({ dispatches: D, passes }),
          checkStamped: false,
          checkLabel: `${s.name} T${T} ${name}`,
        });
        const msPerDispatch = t.ms;
        const GBps = bytes / (msPerDispatch * 1e6);
        const row = {
          shape: s.name,
          T,
          kernel: name,
          us: msPerDispatch * 1e3,
          GBps,
          fraction: GBps / copyGBps,
          nerr,
        };
        rows.push(row);
        console.log(`${rateLine(s, T, name, row.us, GBps, copyGBps)}  ${sweep.errorColumns(nerr, 1e-8)}`);
      } catch (e) {
        sweep.logFailure(`${s.name} T=${T} ${name}`, e);
      }
    }
    destroyAll([x, out, ref]);
  }
  destroyAll([g, ...sets.flatMap((st) => [st.w1, st.s1, st.w3, st.s3])]);
}

// Summary: the old kernel and the best candidate per shape and T, then each candidate's total over the
// five shapes per T (one decode layer's worth, the head counted once: the figure to pick a tiling by).
console.log(`\nSummary (copy ${copyGBps.toFixed(0)} GB/s)`);
for (const s of shapes) {
  for (const T of tokens) {
    const rs = rows.filter((r) => r.shape === s.name && r.T === T && r.nerr <= 1e-8);
    const before = rs.find((r) => r.kernel === "before");
    const best = rs.filter((r) => r.kernel !== "before").sort((a, b) => a.us - b.us)[0];
    if (!before || !best) continue;
    console.log(
      `${s.name.padEnd(8)} T=${T}  before ${before.GBps.toFixed(0)} GB/s (${
        (before.fraction * 100).toFixed(1)
      } %)` +
        `  best ${best.kernel} ${best.GBps.toFixed(0)} GB/s (${(best.fraction * 100).toFixed(1)} %)` +
        `  ×${(before.us / best.us).toFixed(2)}`,
    );
  }
}
for (const mode of ["linear", "norm", "gateUp"] as MatvecMode[]) {
  for (const T of tokens) {
    const names = [...new Set(rows.map((r) => r.kernel))];
    const totals = names.map((k) => {
      const rs = rows.filter((r) =>
        r.kernel === k && r.T === T && shapes.find((s) => s.name === r.shape)!.mode === mode && r.nerr <= 1e-8
      );
      const n = shapes.filter((s) => s.mode === mode).length;
      return { k, us: rs.length === n ? rs.reduce((a, r) => a + r.us, 0) : Infinity };
    }).filter((t) => Number.isFinite(t.us)).sort((a, b) => a.us - b.us);
    console.log(
      `${mode.padEnd(7)} T=${T}: ${
        totals.slice(0, 5).map((t) => `${t.k} ${t.us.toFixed(1)} µs`).join(" | ")
      }` +
        ` | before ${totals.find((t) => t.k === "before")?.us.toFixed(1)} µs`,
    );
  }
}
await sweep.writeJson(
  outArg,
  "matvec.json",
  { adapter: gpu.adapterDescription, copyGBps, rows },
  false,
);
gpu.destroy();
