// Multiply-add throughput of the arithmetic a matrix kernel could build on, on this GPU: f32 FMA (what every
// kernel here uses), dot4I8Packed (int8 × int8 → i32, four products per instruction if the driver maps it to
// a native dot product) and f16 FMA (shader-f16). It answers the question the prefill and ViT figures leave
// open: would int8 activations or f16 math have more multiply-adds per second to give than f32 FMA?
//   deno run -A scripts/bench_arith.ts [--quick] [--ms 200] [--out arith.json]
// Each thread runs `iters` rounds of 8 independent chains (32 multiply-adds a round); GPU timestamps around
// passes of one dispatch, ≥ --ms per probe, median pass.
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();

const workgroups = quick ? 16 : 132 * 32; // 32 workgroups of 256 per SM of an H100/H200
const iters = quick ? 64 : 4096;
const threads = workgroups * 256;
const macsPerDispatch = threads * iters * 32;
const seed = gpu.uploadTensor("arith.seed", "u32", [4], Uint32Array.of(0x9e3779b9, 0x7f4a7c15, 1, 2));
const sink = gpu.createTensor("arith.out", "u32", [threads]);

const probes: [string, string, Record<string, number>][] = [
  ["f32 fma", "arith_probe", { OP: 0 }],
  ["dot4I8Packed", "arith_probe", { OP: 1 }],
];
if (gpu.hasF16) {
  probes.push(["f16 fma (vec4<f16>)", "arith_probe_f16", {}]);
  probes.push(["f16 mul+add (vec4<f16>)", "arith_probe_f16", { MUL_ADD: 1 }]);
}

const rows: { probe: string; ms: number; tmacs: number }[] = [];
for (const [name, kernel, constants] of probes) {
  try {
    const run = () => {
      const r = gpu.recorder(`arith ${name}`);
      r.dispatch(kernel, {
        bindings: [seed, sink],
        params: [iters],
        workgroups: [workgroups, 1],
        constants,
        label: `arith ${name}`,
      });
      r.submit();
    };
    run();
    await gpu.sync(`warming up ${name}`);
    const first = await sweep.timePasses(gpu, timer, name, run, 1, 2, true);
    const passes = quick ? 2 : sweep.passesFor(minMs, 1, first.ms, 3, 500);
    const t = await sweep.timePasses(gpu, timer, name, run, 1, passes, true);
    const tmacs = macsPerDispatch / (t.ms * 1e9);
    rows.push({ probe: name, ms: t.ms, tmacs });
    console.log(
      `${name.padEnd(22)} ${t.ms.toFixed(3).padStart(9)} ms  ${
        tmacs.toFixed(2).padStart(7)
      } T multiply-adds/s` +
        `  (${(2 * tmacs).toFixed(1)} T ops/s)`,
    );
  } catch (e) {
    sweep.logFailure(name, e);
  }
}
const f32Row = rows.find((r) => r.probe === "f32 fma");
if (f32Row) {
  for (const r of rows) console.log(`${r.probe}: ×${(r.tmacs / f32Row.tmacs).toFixed(2)} the f32 FMA rate`);
}
await sweep.writeJson(out, "arith.json", { adapter: gpu.adapterDescription, workgroups, iters, rows }, true);
gpu.destroy();
