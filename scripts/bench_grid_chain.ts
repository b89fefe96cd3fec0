// Experiment (kernels/grid_chain_probe.wgsl, src/ops/grid_chain_probe.ts, PERF.md v51): a decode step's
// 4 × layers int8 products, one dispatch each (SYNC 0, as the model runs them) against one dispatch for all
// with a grid-wide barrier between products (SYNC 1), the same code on the same persistent grid. PF 1–3 also
// load the next product's first chunks while waiting at each barrier; DYN hands the blocks of rows out through
// a ticket counter; NOMATH (timing only) streams the weights without the products. Checks: every variant's
// activations (outputs zeroed before) bit for bit against its tiling's SYNC 0 run, the barrier's count of
// arrivals, and layer 0's four products against a CPU reference on the GPU's own inputs. Timed with GPU
// timestamps, one pass a step.
//   deno run -A scripts/bench_grid_chain.ts [--quick] [--layers 48] [--grids 264,132] [--tilings 4x32,4x64]
//     [--us 2,4] [--modes 0,1,pf,pf2,pf3,d0,d1,n0,n1,f0,f1,m0,m1] [--widths h,qkv,ff] [--kernel NAME]
//     [--ms 200] [--out f.json]
import {
  clearGridChainOutputs,
  createGridChain,
  gridChainArrivals,
  gridChainKind,
  gridChainProductRef,
  gridChainRegion,
  type GridChainVariant,
  recordGridChain,
} from "../src/ops/grid_chain_probe.ts";
import * as sweep from "../src/bench/sweep.ts";

const { args, quick, minMs, out } = sweep.parseArgs({
  layers: { type: "string" },
  grids: { type: "string" },
  tilings: { type: "string" }, // R × LANES, e.g. "4x32,4x64"
  us: { type: "string" }, // chunks in flight, e.g. "2,4"
  // any of 0 (SYNC 0), 1 (SYNC 1), pf (+ PF 1), pf2 (+ PF 2), pf3 (+ PF 3), d0 / d1 (SYNC 0 / 1 with DYN), n0 / n1 (SYNC 0
  // / 1 without the math, timing only), f0 / f1 (the weights as flat arrays, timing only), m0 / m1 (n0 / n1 without the norms); 0 first
  modes: { type: "string" },
  kernel: { type: "string" }, // a copy of kernels/grid_chain_probe.wgsl under another name
  widths: { type: "string" }, // h,qkv,ff (default the real 6144,8192,16384)
});
const kernel = String(args.kernel ?? "grid_chain_probe");
const { gpu, timer } = await sweep.openGpu();

// Real InternLM2-20B widths, or small ones for a smoke run on llvmpipe.
const [h, qkv, ff] = String(args.widths ?? (quick ? "96,128,112" : "6144,8192,16384")).split(",").map(Number);
const shapes = { h, qkv, ff, layers: Number(args.layers ?? (quick ? 2 : 48)) };
const grids = String(args.grids ?? (quick ? "1" : "264,132")).split(",").map(Number);
const tilings = String(args.tilings ?? "4x32,4x64").split(",").map((t) => t.split("x").map(Number));
const us = String(args.us ?? (quick ? "2" : "2,4")).split(",").map(Number);
const modes = new Set(String(args.modes ?? "0,1,pf,pf2").split(","));
const products = 4 * shapes.layers;

const init = gpu.recorder("chain fill");
const chain = createGridChain(gpu, init, shapes, 100);
init.submit();
await gpu.sync("filling the chain");

interface Variant extends GridChainVariant {
  name: string;
}
const variants: Variant[] = [];
for (const nwg of grids) {
  for (const [R, LANES] of tilings as [2 | 4, 32 | 64][]) {
    for (const U of us as (1 | 2 | 4)[]) {
      const tiling = `nwg ${nwg} R${R} L${LANES} U${U}`;
      const add = (
        mode: string,
        name: string,
        sync: 0 | 1,
        pf: 0 | 1 | 2 | 3,
        dyn: 0 | 1 = 0,
        nomath: 0 | 1 | 2 | 3 = 0,
      ) => {
        if (modes.has(mode)) {
          variants.push({ name: `${name} ${tiling}`, sync, pf, dyn, nomath, R, LANES, U, nwg });
        }
      };
      add("0", "dispatch a product ", 0, 0);
      add("1", "one dispatch       ", 1, 0);
      add("pf", "one dispatch + PF  ", 1, 1);
      add("pf2", "one dispatch + PF2 ", 1, 2);
      add("pf3", "one dispatch + PF3 ", 1, 3);
      add("d0", "dispatch a prod DYN", 0, 0, 1);
      add("d1", "one dispatch DYN   ", 1, 0, 1);
      // Timing only: the same streams without x or the products (compared with their own SYNC 0 run).
      add("n0", "dispatch a prod NOMATH", 0, 0, 0, 1);
      add("n1", "one dispatch NOMATH   ", 1, 0, 0, 1);
      add("f0", "dispatch a prod FLAT  ", 0, 0, 0, 2);
      add("f1", "one dispatch FLAT     ", 1, 0, 0, 2);
      add("m0", "dispatch a prod NONORM", 0, 0, 0, 3);
      add("m1", "one dispatch NONORM   ", 1, 0, 0, 3);
    }
  }
}
if (!variants.length || variants[0].sync) throw new Error("--modes must start with 0 (a SYNC 0 reference)");

async function runOnce(v: Variant): Promise<Float32Array> {
  clearGridChainOutputs(gpu, chain);
  const r = gpu.recorder(`chain check ${v.name}`);
  recordGridChain(r, chain, v, { kernel, resetFault: true });
  r.submit();
  await gpu.check(`chain ${v.name}`);
  const act = new Float32Array(await gpu.readBytes(chain.act));
  const arrivals = (await gpu.readI32(chain.count))[0];
  if (v.sync && arrivals !== gridChainArrivals(chain, v)) {
    throw new Error(`${arrivals} arrivals at the barriers, not ${gridChainArrivals(chain, v)}`);
  }
  return act;
}

const reference = await runOnce(variants[0]);
const checks: { product: number; nerr: number }[] = [];
for (let kind = 0; kind < 4; kind++) {
  const [N, K] = gridChainKind(shapes, kind);
  const w = new Int8Array(await gpu.readBytes(chain.weights[kind]));
  const want = gridChainProductRef(shapes, chain.scales, kind, gridChainRegion(reference, kind, K), w);
  const { nerr } = sweep.compareOutputs(gridChainRegion(reference, kind + 1, N), want);
  checks.push({ product: kind, nerr });
  console.log(`layer 0 product ${kind} against the CPU: nerr ${nerr.toExponential(2)}`);
}

const weightBytes = shapes.layers * shapes.h * (shapes.qkv + shapes.h + 3 * shapes.ff);
const rows = [];
// Each tiling's one-dispatch runs against its own SYNC 0 run (another tiling sums in another order).
let tilingReference = reference;
for (const v of variants) {
  try {
    const got = await runOnce(v);
    if (!v.sync) tilingReference = got;
    let mismatches = 0;
    for (let i = 0; i < got.length; i++) if (!Object.is(got[i], tilingReference[i])) mismatches++;
    const f = await gpu.readI32(chain.fault);
    if (f[0]) throw new Error(`a spin gave up, still waiting for ${f[1]} workgroups`);
    const dispatches = v.sync ? 2 : 1 + products;
    const passes = quick ? 2 : Math.max(5, Math.ceil(minMs / 9));
    const t = await sweep.timePasses(
      gpu,
      timer,
      v.name,
      () => {
        const r = gpu.recorder(`chain ${v.name}`);
        recordGridChain(r, chain, v, { kernel });
        r.submit();
      },
      1,
      passes,
      true,
    );
    const faults = (await gpu.readI32(chain.fault))[0];
    const gbps = weightBytes / (t.ms * 1e6);
    rows.push({ ...v, ms: t.ms, msMin: t.msMin, gbps, dispatches, mismatches, faults });
    console.log(
      `${v.name}: ${t.ms.toFixed(3)} ms a step (min ${t.msMin.toFixed(3)}), ${gbps.toFixed(0)} GB/s, ` +
        `${dispatches} dispatches, ${mismatches} values differ from its SYNC 0${
          faults ? "  SPIN GAVE UP" : ""
        }`,
    );
  } catch (e) {
    sweep.logFailure(v.name, e);
    rows.push({ ...v, error: (e as Error).message.split("\n")[0] });
  }
}
await sweep.writeJson(out, "grid_chain.json", {
  adapter: gpu.adapterDescription,
  kernel,
  shapes,
  weightBytes,
  checks,
  rows,
});
gpu.destroy();
