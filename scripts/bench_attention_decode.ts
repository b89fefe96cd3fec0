// Times kernels/attention_decode.wgsl (+ its combine pass) in every tiling of attentionDecodeConfigs and a
// sweep of keys per split against the kernels it replaced (kernels/attention_decode_baseline.wgsl and
// attention_decode_combine_baseline.wgsl, launched with their old split policy) on the InternLM2-20B decode
// shapes: H = 48 query heads, Hkv = 8, Dh = 128, at B = 1 with 512 and 4096 keys and B = 8 with 512.
//   deno run -A scripts/bench_attention_decode.ts [--quick] [--ms 200] [--out attention_decode.json]
//     [--kv-cache bf16: the caches in bf16 (KV_CACHE_DTYPE=bf16); the baseline, f32 only, is then left out]
//     [--rows 8,16: the batches of several rows timed at 512 keys (default 8)]
//     [--cache-mb 150: the KV caches the calls rotate over, at least this many MB]
// Timing: GPU timestamps around passes of D = 50 back-to-back calls (attention + combine, as the model
// records them), passes until ≥ --ms per candidate; µs per call is the median pass over D. The calls rotate
// over enough KV caches (≥ 3, > --cache-mb) that the 50 MB L2 cannot serve them. GB/s counts the K/V bytes
// 2·B·ctx·Hkv·Dh·(4 or 2 with bf16) once per call. Every candidate's output is compared with the old kernel's: normalised
// error Σ(a−b)²/Σb² and the largest |a−b| over the largest |b|. One more candidate runs the default tiling
// as a decode step of the model does (attentionDecodeFromQkv: q and k rotated, k and v appended in the
// kernel) on inputs of its own, so it is timed, not compared.
// --quick: small odd shapes, two passes of two calls (a smoke run on llvmpipe, well under a minute).
import { f32, type Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import {
  attentionDecode,
  type AttentionDecodeConfig,
  attentionDecodeConfigs,
  attentionDecodeFromQkv,
  createAttentionDecodeScratch,
  type DecodeRope,
  decodeSplits,
  defaultAttentionDecodeConfig,
} from "../src/ops/attention_decode.ts";
import * as sweep from "../src/bench/sweep.ts";
import { ropeCosSinRows, ropeTables } from "../src/ops/rope.ts";
import { kvValueBytes } from "../src/model/kv_cache.ts";

const { args, quick, minMs, out: outArg } = sweep.parseArgs({
  "kv-cache": { type: "string" },
  "cache-mb": { type: "string", default: "150" },
  rows: { type: "string", default: "8" },
});
const manyRows = String(args.rows).split(",").map(Number);
if (!manyRows.every((b) => Number.isInteger(b) && b >= 2 && b <= 64)) {
  throw new Error(`--rows ${args.rows}: batches of 2–64 rows, separated by commas`);
}
const kvDtype = (args["kv-cache"] as string | undefined) ?? "f32";
if (kvDtype !== "f32" && kvDtype !== "bf16") throw new Error(`--kv-cache ${kvDtype}: use f32 or bf16`);
const bf16 = kvDtype === "bf16";

interface Shape {
  B: number;
  ctx: number; // kvLen; the cache holds exactly ctx positions
  H: number;
  Hkv: number;
  Dh: number;
}
const shapes: Shape[] = quick
  ? [
    { B: 1, ctx: 77, H: 12, Hkv: 2, Dh: 128 },
    { B: 3, ctx: 130, H: 12, Hkv: 2, Dh: 128 },
  ]
  : [
    { B: 1, ctx: 512, H: 48, Hkv: 8, Dh: 128 },
    { B: 1, ctx: 4096, H: 48, Hkv: 8, Dh: 128 },
    ...manyRows.map((B) => ({ B, ctx: 512, H: 48, Hkv: 8, Dh: 128 })),
  ];
/** Keys per split swept for every tiling (forced through `splits`). */
const chunks = quick ? [32, 64] : [32, 64, 128, 256, 512];
const callsPerPass = quick ? 2 : 50;
const cacheBytes = quick ? 0 : Number(args["cache-mb"]) * 1e6;
if (!(cacheBytes >= 0)) {
  throw new Error(`--cache-mb ${args["cache-mb"]}: megabytes of KV caches to rotate over`);
}

interface Inputs {
  q: Tensor; // [B, H·Dh]
  qkv: Tensor; // [B, (H + 2·Hkv)·Dh]: the fused kernel's input (attentionDecodeFromQkv), as wqkv leaves it
  rope: DecodeRope;
  k: Tensor[]; // [B, ctx, Hkv·Dh] each
  v: Tensor[];
  valid: Tensor; // [B, ctx] i32
  scratch: Tensor; // [maxSplits, B·H, Dh+4]
}
type Launch = (r: Recorder, x: Inputs, i: number, out: Tensor) => void;

/** The old launcher: 16-key tiles, 528 target workgroups, ≥ 32 keys per split, chunk a multiple of 16. */
function baselineSplits(kvLen: number, batch: number, numKvHeads: number): { splits: number; chunk: number } {
  const wanted = Math.min(Math.ceil(528 / (batch * numKvHeads)), Math.ceil(kvLen / 32));
  const splits = Math.max(1, Math.min(wanted, 128));
  const chunk = Math.ceil(kvLen / splits / 16) * 16;
  return { splits: Math.ceil(kvLen / chunk), chunk };
}

function baseline(s: Shape): [string, Launch, string] {
  const { splits, chunk } = baselineSplits(s.ctx, s.B, s.Hkv);
  const launch: Launch = (r, x, i, out) => {
    r.dispatch("attention_decode_baseline", {
      bindings: [x.q, x.k[i], x.v[i], x.valid, out, splits > 1 ? x.scratch : out],
      params: [s.B, s.ctx, s.ctx, s.H, s.Hkv, chunk, splits, s.H / s.Hkv, f32(1 / Math.sqrt(s.Dh))],
      workgroups: [splits, s.Hkv, s.B],
      constants: { D4: s.Dh / 4 },
      label: "attention_decode_baseline",
    });
    if (splits > 1) {
      r.dispatch("attention_decode_combine_baseline", {
        bindings: [x.scratch, out],
        params: [s.B * s.H, splits],
        workgroups: [s.B * s.H],
        constants: { D4: s.Dh / 4 },
        label: "attention_decode_combine_baseline",
      });
    }
  };
  return ["baseline", launch, `${splits}×${chunk}`];
}

const configName = (c: AttentionDecodeConfig) => `WG${c.workgroupSize}${c.prefetch ? "" : " no-prefetch"}`;

/** attentionDecode's shape for a sweep shape and its inputs (splits: forced, else the launcher's choice). */
function decodeShape(s: Shape, x: Inputs, splits?: number) {
  return {
    batch: s.B,
    kvLen: s.ctx,
    numHeads: s.H,
    numKvHeads: s.Hkv,
    headDim: s.Dh,
    scratch: x.scratch,
    splits,
  };
}

function candidate(s: Shape, config: AttentionDecodeConfig, splits?: number): Launch {
  return (r, x, i, out) =>
    attentionDecode(r, x.q, x.k[i], x.v[i], x.valid, out, decodeShape(s, x, splits), config);
}

/** The model's decode step: q and k rotated and k, v appended by the attention kernel itself. */
function fused(s: Shape): Launch {
  return (r, x, i, out) =>
    attentionDecodeFromQkv(r, x.qkv, x.rope, x.k[i], x.v[i], x.valid, out, decodeShape(s, x));
}

/** The candidate whose inputs differ from the others' (not compared with them). */
const fusedName = "default, fused rope and cache write";

function candidates(s: Shape, capacity: number): [string, Launch, string][] {
  const d = decodeSplits(s.ctx, s.B, s.Hkv, capacity);
  const list: [string, Launch, string][] = [
    ...(bf16 ? [] : [baseline(s)]),
    [
      `default ${configName(defaultAttentionDecodeConfig)}`,
      candidate(s, defaultAttentionDecodeConfig),
      `${d.splits}×${d.chunk}`,
    ],
    [fusedName, fused(s), `${d.splits}×${d.chunk}`],
  ];
  for (const config of attentionDecodeConfigs) {
    for (const chunk of chunks) {
      const splits = Math.ceil(s.ctx / chunk);
      const real = Math.ceil(s.ctx / Math.ceil(s.ctx / splits));
      if (chunk > s.ctx || splits > capacity) continue;
      list.push([`${configName(config)} chunk ${chunk}`, candidate(s, config, splits), `${real}×${chunk}`]);
    }
  }
  return list;
}

const { gpu, timer } = await sweep.openGpu();

interface Row {
  B: number;
  ctx: number;
  H: number;
  Hkv: number;
  Dh: number;
  kernel: string;
  splits: string; // "splits×keys per split"
  us: number;
  usMin: number;
  GBps: number;
  callsPerPass: number;
  passes: number;
  caches: number;
  nerr: number;
  maxDiffOverMax: number;
}
const rows: Row[] = [];

let seed = 1;
for (const s of shapes) {
  const { B, ctx, H, Hkv, Dh } = s;
  const kvBytes = 2 * B * ctx * Hkv * Dh * kvValueBytes(kvDtype);
  const caches = Math.max(3, Math.ceil(cacheBytes / kvBytes));
  const capacity = Math.max(128, Math.ceil(ctx / 32));
  const init = gpu.recorder("bench_attention_decode.fill");
  const mk = (name: string, dtype: "f32" | "i32" | "bf16x2", dims: number[]) =>
    gpu.createTensor(`bench_attention_decode.${name}`, dtype, dims);
  const positions = Int32Array.from({ length: B }, () => ctx - 1);
  const tables = ropeTables(1e6, Dh, ctx);
  const x: Inputs = {
    q: mk("q", "f32", [B, H * Dh]),
    qkv: mk("qkv", "f32", [B, (H + 2 * Hkv) * Dh]),
    rope: {
      positions: gpu.uploadTensor("bench_attention_decode.positions", "i32", [B], positions),
      cosSin: gpu.uploadTensor(
        "bench_attention_decode.cos_sin",
        "f32",
        [ctx, Dh],
        ropeCosSinRows(tables, Dh),
      ),
    },
    k: [],
    v: [],
    valid: mk("valid", "i32", [B, ctx]),
    scratch: createAttentionDecodeScratch(gpu, "bench_attention_decode.scratch", {
      batch: B,
      numHeads: H,
      headDim: Dh,
      maxSplits: capacity,
    }),
  };
  // Scores of a few units (q·k·Dh^-0.5 with entries in ±2), like trained LLM attention.
  fillRandom(init, x.q, { seed: seed++, lo: -2, hi: 2 });
  fillRandom(init, x.qkv, { seed: seed++, lo: -2, hi: 2 });
  for (let i = 0; i < caches; i++) {
    x.k.push(mk(`k${i}`, bf16 ? "bf16x2" : "f32", [B, ctx, Hkv * Dh]));
    x.v.push(mk(`v${i}`, bf16 ? "bf16x2" : "f32", [B, ctx, Hkv * Dh]));
    fillRandom(init, x.k[i], { seed: seed++, lo: -2, hi: 2 });
    fillRandom(init, x.v[i], { seed: seed++ });
  }
  init.submit();
  // Left padding as a batch of different prompt lengths has it: sample b starts at 13·b.
  const valid = new Int32Array(B * ctx).fill(1);
  for (let b = 0; b < B; b++) valid.fill(0, b * ctx, b * ctx + Math.min(13 * b, ctx - 1));
  gpu.writeTensor(x.valid, valid);
  await gpu.sync("filling q and the KV caches");
  const out = mk("out", "f32", [B, H * Dh]);
  console.log(
    `\nB=${B} ctx=${ctx} H=${H}/${Hkv} Dh=${Dh}: K/V ${(kvBytes / 1e6).toFixed(1)} MB per call, ` +
      `${caches} caches (${(caches * kvBytes / 1e6).toFixed(0)} MB)`,
  );

  let ref: Float32Array | null = null;
  for (const [name, launch, splits] of candidates(s, capacity)) {
    try {
      const chk = gpu.recorder(`bench_attention_decode.check ${name}`);
      launch(chk, x, 0, out);
      chk.submit();
      const got = await gpu.readF32(out);
      ref ??= got;
      // The fused kernel's queries come from qkv: compared with itself (NaN or Inf would still show).
      const { nerr, maxDiffOverMax } = sweep.compareOutputs(got, name === fusedName ? got : ref);

      // The same rotation every pass, so the bind groups come from the cache.
      const t = await sweep.timeCandidate(gpu, timer, {
        name,
        cacheLabel: `bench_attention_decode.${name}`,
        recorderLabel: `bench_attention_decode ${name}`,
        launch: (r, d) => launch(r, x, d % caches, out),
        warmupDispatches: callsPerPass,
        plan: sweep.callsPlan(callsPerPass, quick, minMs),
        checkStamped: true,
      });
      const { passes } = t;
      const us = t.ms * 1e3, usMin = t.msMin * 1e3;
      const row: Row = {
        B,
        ctx,
        H,
        Hkv,
        Dh,
        kernel: name,
        splits,
        us,
        usMin,
        GBps: kvBytes / (us * 1e3),
        callsPerPass,
        passes,
        caches,
        nerr,
        maxDiffOverMax,
      };
      rows.push(row);
      console.log(
        `  ${name.padEnd(30)} ${splits.padStart(8)} ${us.toFixed(2).padStart(8)} µs/call ` +
          `(min ${usMin.toFixed(2)})  ${row.GBps.toFixed(0).padStart(5)} GB/s  ` +
          `${sweep.errorColumns(nerr, 1e-10, maxDiffOverMax)}  [${passes}×${callsPerPass}]`,
      );
    } catch (e) {
      sweep.logFailure(`  ${name}`, e);
    }
  }
  [x.q, x.qkv, x.rope.positions, x.rope.cosSin, ...x.k, ...x.v, x.valid, x.scratch, out]
    .forEach((t) => t.buffer.destroy());
}

console.log("\nSummary (µs per call, attention + combine; baseline: kernels/attention_decode_baseline.wgsl)");
const fmt = (r: Row, base: Row) => {
  const speedup = base.us / r.us;
  return `${r.kernel} (${r.splits}) ${r.us.toFixed(2)} µs ${r.GBps.toFixed(0)} GB/s ×${speedup.toFixed(2)}`;
};
for (const s of shapes) {
  const rs = rows.filter((r) => r.B === s.B && r.ctx === s.ctx && r.Dh === s.Dh);
  // bf16: no baseline kernel; the default tiling is what the others are measured against.
  const reference = bf16 ? rs.find((r) => r.kernel.startsWith("default"))?.kernel ?? "" : "baseline";
  const { base, ranked } = sweep.rankAgainst(rs, reference, 1e-10, (r) => r.us);
  const def = rs.find((r) => r.kernel.startsWith("default"));
  if (!base || ranked.length === 0) continue;
  const old = `${base.kernel} (${base.splits}) ${base.us.toFixed(2)} µs ${base.GBps.toFixed(0)} GB/s`;
  const chosen = def ? fmt(def, base) : "default missing";
  console.log(`B=${s.B} ctx=${s.ctx}: ${old} | ${chosen} | best ${fmt(ranked[0], base)}`);
  for (const c of attentionDecodeConfigs) {
    const best = ranked.find((r) => r.kernel.startsWith(`${configName(c)} chunk`));
    if (best) console.log(`  best chunk for ${configName(c)}: ${best.splits} ${best.us.toFixed(2)} µs`);
  }
  const f = rs.find((r) => r.kernel === fusedName);
  if (f) console.log(`  ${fusedName}: ${f.splits} ${f.us.toFixed(2)} µs`);
}
await sweep.writeJson(outArg, "attention_decode.json", { adapter: gpu.adapterDescription, rows });
gpu.destroy();
