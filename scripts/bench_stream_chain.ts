// Experiment (kernels/stream_read_probe.wgsl, kernels/matvec_row_probe.wgsl, src/ops/stream_probe.ts, PERF.md
// v52): how far a decode step's int8 products are from a plain read of their bytes, and why.
//   overlap  48 reads of wo's 37.7 MB: each ordered after the one before (one shared sink: a barrier between
//            dispatches, as between the model's products) or free to overlap (a sink each), and the ordered
//            chain with a read of the next matrix's first 1 / 3 / 6 MB (its own sink) between reads;
//   chain    a step's 192 weight streams (wqkv, wo, gate·up, w2 of 48 layers) as plain reads, ordered or free,
//            U loads a thread in flight, on grids of 1056–8448 workgroups;
//   row      wo, w2 and wqkv at one token as a chain of 48 dispatches: the model's `linear` (its one-row
//            kernel), plain reads of the same bytes, and kernels/matvec_row_probe.wgsl's knobs
//            (BLOCKED: the same random bytes read block-major).
// Weights are rotated over copies larger than the 50 MB L2. Timed with GPU timestamps, one pass a chain.
//   deno run -A scripts/bench_stream_chain.ts [--quick] [--parts overlap,chain,row] [--out f.json]
import { median, nsToMs } from "../src/bench/gpu_timer.ts";
import * as sweep from "../src/bench/sweep.ts";
import type { Recorder } from "../src/gpu/recorder.ts";
import type { Tensor } from "../src/gpu/tensor.ts";
import { fillRandom } from "../src/ops/fill_random.ts";
import { linear, type LinearWeights } from "../src/ops/linear.ts";
import {
  recordMatvecRowProbe,
  recordStreamRead,
  rowProbeName,
  rowProbeTakes,
  type RowProbeVariant,
} from "../src/ops/stream_probe.ts";

const { args, quick, out } = sweep.parseArgs({ parts: { type: "string" } });
const parts = new Set(String(args.parts ?? "overlap,chain,row").split(","));
const { gpu, timer } = await sweep.openGpu();
const passes = quick ? 2 : 20;
const results: Record<string, Record<string, number>> = {};

/** Median GPU time (ms) of one pass of `record`, after one untimed pass. */
async function timeChain(name: string, record: (r: Recorder) => void): Promise<number> {
  const run = () => {
    const r = gpu.recorder(name);
    record(r);
    r.submit();
  };
  run();
  await gpu.sync(name);
  timer.start(name);
  for (let p = 0; p < passes; p++) run();
  return median((await timer.collect()).map((s) => nsToMs(s.endNs - s.beginNs)));
}

async function filled(label: string, dtype: "i32" | "i8x4", shape: number[], seed: number): Promise<Tensor> {
  const t = gpu.createTensor(label, dtype, shape);
  const r = gpu.recorder(`fill ${label}`);
  fillRandom(r, t, { seed });
  r.submit();
  await gpu.sync(`fill ${label}`);
  return t;
}

const sinks = Array.from({ length: 4 * 48 + 1 }, (_, i) => gpu.createTensor(`sink ${i}`, "u32", [4]));
const shared = sinks[4 * 48];
const wqkv = quick ? [64, 48] : [8192, 6144], wo = quick ? [48, 48] : [6144, 6144];
const gateUp = quick ? [128, 48] : [2 * 16384, 6144], w2 = quick ? [48, 128] : [6144, 16384];

if (parts.has("overlap")) {
  const [N, K] = wo;
  const mats = await Promise.all(
    Array.from({ length: 8 }, (_, i) => filled(`wo ${i}`, "i8x4", [N, K], i + 1)),
  );
  const row: Record<string, number> = {};
  for (const wgs of [264, 1056, 4224]) {
    const chain = (name: string, own: boolean, headMB = 0) =>
      timeChain(name, (r) => {
        for (let i = 0; i < 48; i++) {
          recordStreamRead(r, mats[i % 8], own ? sinks[i] : shared, { workgroups: wgs });
          if (headMB) {
            const words = Math.min(N * K / 16, Math.floor(headMB * 1e6 / 16));
            recordStreamRead(r, mats[(i + 1) % 8], sinks[i], { workgroups: 1056, words });
          }
        }
      });
    const add = (name: string, ms: number) => {
      row[`${name} wgs ${wgs}`] = 1000 * ms / 48;
      console.log(
        `overlap ${`${name}, ${wgs} workgroups`.padEnd(44)} ${(1000 * ms / 48).toFixed(2)} µs a read ` +
          `(${(N * K * 48 / ms / 1e6).toFixed(0)} GB/s)`,
      );
    };
    add("ordered", await chain("ordered", false));
    add("free", await chain("free", true));
    for (const mb of [1, 3, 6]) add(`ordered + next head ${mb} MB`, await chain("head", false, mb));
  }
  results.overlap = row;
}

if (parts.has("chain")) {
  const sizes = [wqkv, wo, gateUp, w2];
  const held = quick ? 2 : 4, timed = quick ? 2 : 12;
  const layers: Tensor[][] = [];
  for (let l = 0; l < held; l++) {
    layers.push(
      await Promise.all(sizes.map(([n, k], j) => filled(`l${l}.${j}`, "i8x4", [n, k], 10 * l + j + 1))),
    );
  }
  const bytes = sizes.reduce((a, [n, k]) => a + n * k, 0);
  const row: Record<string, number> = {};
  for (const ordered of [true, false]) {
    for (const U of [1, 2, 4] as const) {
      for (const wgs of [1056, 2112, 4224, 8448]) {
        const name = `${ordered ? "ordered" : "free"} U${U} wgs ${wgs}`;
        const ms = await timeChain(name, (r) => {
          for (let l = 0; l < timed; l++) {
            layers[l % held].forEach((w, j) =>
              recordStreamRead(r, w, ordered ? shared : sinks[4 * l + j], { workgroups: wgs, U })
            );
          }
        });
        row[name] = ms / timed * 48;
        console.log(
          `chain ${name.padEnd(26)} ${(ms / timed * 48).toFixed(3)} ms for 48 layers ` +
            `(${(bytes * timed / ms / 1e6).toFixed(0)} GB/s)`,
        );
      }
    }
  }
  results.chain = row;
}

if (parts.has("row")) {
  const variants: RowProbeVariant[] = [
    { UW: 8, LANES: 32, MATH: 3 },
    { UW: 8, LANES: 128, MATH: 3 },
    { UW: 2, LANES: 32 },
    { UW: 4, LANES: 32 },
    { UW: 8, LANES: 32 },
    { UW: 4, LANES: 64 },
    { UW: 8, LANES: 64 },
    { UW: 4, LANES: 128 },
    { UW: 8, LANES: 128 },
    { UW: 8, LANES: 32, MATH: 1 },
    { UW: 8, LANES: 32, MATH: 2 },
    { UW: 8, LANES: 128, MATH: 1 },
    { UW: 8, LANES: 128, MATH: 2 },
    { UW: 4, LANES: 32, ACC: 2 },
    { UW: 8, LANES: 32, ACC: 2 },
    { UW: 8, LANES: 32, ACC: 4 },
    { UW: 4, LANES: 32, PIPE: true },
    { UW: 8, LANES: 32, PIPE: true },
    { UW: 8, LANES: 128, PIPE: true },
    { UW: 4, LANES: 32, R2: true },
    { UW: 4, LANES: 64, R2: true },
    { UW: 4, LANES: 128, R2: true },
    { UW: 8, LANES: 32, MATH: 3, BLOCKED: true },
    { UW: 8, LANES: 128, MATH: 3, BLOCKED: true },
    { UW: 4, LANES: 32, BLOCKED: true },
    { UW: 8, LANES: 32, BLOCKED: true },
    { UW: 4, LANES: 64, BLOCKED: true },
    { UW: 8, LANES: 64, BLOCKED: true },
    { UW: 8, LANES: 128, BLOCKED: true },
  ];
  const row: Record<string, number> = {};
  for (const [name, [N, K]] of [["wo", wo], ["w2", w2], ["wqkv", wqkv]] as const) {
    const copies = quick ? 2 : Math.max(2, Math.ceil(160e6 / (N * K)));
    const ws: LinearWeights[] = [];
    for (let c = 0; c < copies; c++) {
      const weight = await filled(`${name} ${c}`, "i8x4", [N, K], 100 + c);
      const scale = gpu.createTensor(`${name} scale ${c}`, "f32", [N]);
      const r = gpu.recorder("scale");
      fillRandom(r, scale, { seed: 200 + c, lo: 1e-3, hi: 2e-3 });
      r.submit();
      ws.push({ kind: "int8", weight, scale, bias: null });
    }
    const x = gpu.createTensor(`${name} x`, "f32", [1, K]);
    const o = gpu.createTensor(`${name} out`, "f32", [1, N]);
    const init = gpu.recorder("x");
    fillRandom(init, x, { seed: 7 });
    init.submit();
    const time = async (label: string, rec: (r: Recorder, w: LinearWeights) => void) => {
      const ms = await timeChain(label, (r) => {
        for (let d = 0; d < 48; d++) rec(r, ws[d % copies]);
      });
      row[`${name} ${label}`] = 1000 * ms / 48;
      console.log(
        `row ${name.padEnd(4)} ${label.padEnd(34)} ${(1000 * ms / 48).toFixed(2)} µs ` +
          `(${(N * K * 48 / ms / 1e6).toFixed(0)} GB/s)`,
      );
    };
    await time("model linear()", (r, w) => linear(r, x, w, o));
    for (const wgs of [4224, 8448]) {
      await time(
        `plain read, ${wgs} workgroups`,
        (r, w) => recordStreamRead(r, w.weight, shared, { workgroups: wgs }),
      );
    }
    for (const v of variants) {
      if (!rowProbeTakes(v, K)) continue; // BLOCKED: whole blocks a row only
      await time(rowProbeName(v), (r, w) => {
        if (w.kind === "int8") recordMatvecRowProbe(r, x, w.weight, w.scale, o, v);
      });
    }
    for (const w of ws) [w.weight, w.kind === "int8" ? w.scale : w.weight].forEach((t) => t.buffer.destroy());
  }
  results.row = row;
}

await sweep.writeJson(out, "stream_chain.json", {
  card: gpu.adapterDescription,
  date: new Date().toISOString().slice(0, 10),
  command: `deno run -A scripts/bench_stream_chain.ts ${Deno.args.join(" ")}`.trim(),
  results,
});
