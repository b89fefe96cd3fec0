// The floor a dispatch boundary puts under every kernel of a decode step: D dependent dispatches of a
// kernel with almost no work (residual_add, each reading and writing the buffer the one before wrote, so
// the driver orders them with a barrier as it does the model's kernels), timed with GPU timestamps around
// the pass. Reported per dispatch, for 1 workgroup and for as many as the matrix-vector kernels launch.
//   deno run -A scripts/bench_dispatch.ts [--quick] [--ms 200] [--out dispatch.json]
import { fillRandom } from "../src/ops/fill_random.ts";
import { residualAdd } from "../src/ops/residual_add.ts";
import * as sweep from "../src/bench/sweep.ts";

const { quick, minMs, out } = sweep.parseArgs({});
const { gpu, timer } = await sweep.openGpu();

const D = quick ? 4 : 292; // as many dispatches as a decode step
const rows: { workgroups: number; usPerDispatch: number; usMin: number }[] = [];
for (const workgroups of quick ? [1, 3] : [1, 132, 264, 768]) {
  const acc = gpu.createTensor(`dispatch.acc${workgroups}`, "f32", [workgroups, 256]);
  const y = gpu.createTensor(`dispatch.y${workgroups}`, "f32", [workgroups, 256]);
  sweep.launchOnce(gpu, "fill", (r) => {
    fillRandom(r, acc, { seed: 1 });
    fillRandom(r, y, { seed: 2, lo: -1e-3, hi: 1e-3 });
  });
  const run = () => {
    const r = gpu.recorder(`dispatch ${workgroups}`);
    for (let d = 0; d < D; d++) residualAdd(r, acc, y, null);
    r.submit();
  };
  run();
  await gpu.sync(`warming up ${workgroups} workgroups`);
  const passes = quick ? 2 : Math.max(5, Math.ceil(minMs / 2));
  const t = await sweep.timePasses(gpu, timer, `dispatch ${workgroups}`, run, D, passes, true);
  rows.push({ workgroups, usPerDispatch: t.ms * 1e3, usMin: t.msMin * 1e3 });
  console.log(
    `${String(workgroups).padStart(4)} workgroups of 256: ${
      (t.ms * 1e3).toFixed(2)
    } µs per dependent dispatch ` +
      `(min ${(t.msMin * 1e3).toFixed(2)}; ${D} a pass, ${passes} passes)`,
  );
  acc.buffer.destroy();
  y.buffer.destroy();
}
await sweep.writeJson(
  out,
  "dispatch.json",
  { adapter: gpu.adapterDescription, dispatchesPerPass: D, rows },
  true,
);
gpu.destroy();
