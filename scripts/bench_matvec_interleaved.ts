// Experiment: the int8 matrix-vector kernels on the decode shapes with the weights row-major (what the model
// runs: `linear`, which picks linear_matvec or matvec_i8) against the interleaved layout of
// kernels/matvec_interleaved.wgsl (one broadcast x load per warp), at T = 1, 4 and 8, beside the copy kernel.
//   deno run -A scripts/bench_matvec_interleaved.ts [--quick] [--ms 200] [--out matvec_interleaved.json]
// Plain linear only (no RMSNorm, no gate/up fusion: the gate/up pair is timed as one 32768-row linear of the
// same bytes). Weights are random in both layouts (speed does not depend on the values), so outputs are not
// compared here; the kernel's correctness is tests/kernels/matvec_interleaved_test.ts. Timing: the harness
// of src/bench/linear_sweep.ts (as scripts/bench_matvec.ts).
import { linear } from "../src/ops/linear.ts";
import { matvecInterleaved } from "../src/ops/matvec_interleaved.ts";
import { copyReference, type LinearLaunch, runLinearSweep } from "../src/bench/linear_sweep.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out: outArg } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();
const copyGBps = await copyReference(gpu, timer, quick);

const candidates: [string, LinearLaunch][] = [
  [
    "row-major (model)",
    (r, io) =>
      linear(r, io.x, { kind: "int8", weight: io.w, scale: io.scale, bias: null }, io.out, {
        accumulate: true,
      }),
  ],
  [
    "interleaved R1",
    (r, io) => matvecInterleaved(r, io.x, io.w, io.scale, io.out, { accumulate: true, rowsPerLane: 1 }),
  ],
  [
    "interleaved R2",
    (r, io) => matvecInterleaved(r, io.x, io.w, io.scale, io.out, { accumulate: true, rowsPerLane: 2 }),
  ],
];
const rows = await runLinearSweep({
  gpu,
  timer,
  copyGBps,
  label: "bench_matvec_interleaved",
  shapes: quick ? [{ name: "small", N: 301, K: 272 }] : [
    { name: "wqkv", N: 8192, K: 6144 },
    { name: "wo", N: 6144, K: 6144 },
    { name: "gate+up", N: 32768, K: 6144 },
    { name: "w2", N: 6144, K: 16384 },
  ],
  tokens: [1, 4, 8],
  candidates: () => candidates,
  compare: false,
  quick,
  minMs,
});
await sweep.writeJson(outArg, "matvec_interleaved.json", {
  adapter: gpu.adapterDescription,
  copyGBps,
  rows,
});
gpu.destroy();
