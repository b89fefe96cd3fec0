// How far the one-token biased sums (kernels/int8.wgsl, i8x4_biased) are from the CPU reference, beside the
// exact widening, over many inputs: the normalised error Σ(a−b)²/Σb² of each product (median, 90th
// percentile, worst, and how many exceed tolerance.matmul), for the model's wqkv tiling (RMSNorm folded in)
// and its gate·up tiling (silu·up), on the inputs of tests/kernels/rms_norm_linear_test.ts (x in [−4, 4],
// g in [0.5, 1.5]), K = 64, 528 and 2048, 60 seeds each. `--rows 1` shows why a single output is no test of
// that tolerance (its sum may cancel: the exact sums exceed it too); `--rows 67` is what the tests check.
//   deno run -A scripts/probe_biased_precision.ts [--rows N] [--seeds S]
import { parseArgs } from "node:util";
import { Gpu } from "../src/gpu/device.ts";
import { uploadLinear } from "../src/ops/linear.ts";
import { type MatvecConfig, matvecConfig, type MatvecMode, recordMatvecI8 } from "../src/ops/matvec_i8.ts";
import { gateUpSiluRef } from "../src/ref/gate_up_silu.ts";
import { rmsNormLinearRef } from "../src/ref/rms_norm_linear.ts";
import { randomF32 } from "../src/ref/random.ts";
import { compareOutputs } from "../src/bench/sweep.ts";
import { hostInt8 } from "../tests/kernels/host_linear.ts";
import { tolerance } from "../tests/kernels/tolerances.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rows: { type: "string", default: "1" }, seeds: { type: "string", default: "60" } },
});
const N = Number(values.rows), seeds = Number(values.seeds);
const nerrBound = tolerance.matmul.nerr;
const gpu = await Gpu.create();
console.log(
  `${gpu.adapterDescription}; half subnormals kept: ${gpu.halfSubnormals}; ${N} rows, ${seeds} seeds`,
);

const tilings: [MatvecMode, MatvecConfig][] = [
  ["norm", { ...matvecConfig("norm", 1, 8192, 6144)!, persist: 1 }],
  ["gateUp", matvecConfig("gateUp", 1, 16384, 6144)!],
];
for (const [mode, tiling] of tilings) {
  const errors: Record<string, number[]> = { biased: [], exact: [] };
  for (const K of [64, 528, 2048]) {
    for (let s = 0; s < seeds; s++) {
      const seed = K * 104729 + s * 977 + 7950 + N;
      const h1 = hostInt8(N, K, false, seed), h3 = hostInt8(N, K, false, seed + 11);
      const xs = randomF32(K, seed + 3, -4, 4), gs = randomF32(K, seed + 4, 0.5, 1.5);
      const w1 = uploadLinear(gpu, "w1", h1), w3 = uploadLinear(gpu, "w3", h3);
      if (w1.kind !== "int8" || w3.kind !== "int8") throw new Error("int8 weights expected");
      const x = gpu.uploadTensor("x", "f32", [1, K], xs);
      const g = gpu.uploadTensor("g", "f32", [K], gs);
      const out = gpu.createTensor("out", "f32", [1, N]);
      const ref = mode === "norm"
        ? rmsNormLinearRef(xs, 1, gs, 1e-6, h1)
        : gateUpSiluRef(xs, 1, gs, 1e-6, h1, h3);
      for (const form of ["biased", "exact"]) {
        const r = gpu.recorder("probe");
        recordMatvecI8(r, {
          mode,
          x,
          g,
          w1: w1.weight,
          s1: w1.scale,
          w3: mode === "gateUp" ? w3.weight : null,
          s3: mode === "gateUp" ? w3.scale : null,
          bias: null,
          out,
          eps: 1e-6,
          config: { ...tiling, biased: form === "biased" },
          label: "probe",
        });
        r.submit();
        errors[form].push(compareOutputs(await gpu.readF32(out), ref).nerr);
      }
      for (const t of [x, g, out, w1.weight, w1.scale, w3.weight, w3.scale]) t.buffer.destroy();
    }
  }
  for (const [form, e] of Object.entries(errors)) {
    e.sort((a, b) => a - b);
    const at = (q: number) => e[Math.floor(q * (e.length - 1))].toExponential(1);
    const over = e.filter((v) => v > nerrBound).length;
    const spread = `median ${at(0.5)}  p90 ${at(0.9)}  worst ${at(1)}`;
    console.log(`${mode.padEnd(6)} ${form.padEnd(6)} ${spread}  over ${nerrBound}: ${over} of ${e.length}`);
  }
}
