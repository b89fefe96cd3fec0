// Every tiling of kernels/matvec_i8.wgsl that scripts/bench_matvec.ts may pick, in all three modes, on
// odd shapes: the launchers only exercise the tilings chosen today, and a later choice must already be right.
import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { persistentGroups } from "../../src/ops/grid.ts";
import { type HostLinear, type LinearWeights, uploadLinear } from "../../src/ops/linear.ts";
import {
  compactReductionFloats,
  fullReductionFloats,
  type MatvecConfig,
  matvecConfig,
  type MatvecMode,
  matvecReductionFloats,
  matvecReductionLength,
  matvecRowBlocks,
  recordMatvecI8,
} from "../../src/ops/matvec_i8.ts";
import { linearRef } from "../../src/ref/linear.ts";
import { rmsNormLinearRef } from "../../src/ref/rms_norm_linear.ts";
import { gateUpSiluRef } from "../../src/ref/gate_up_silu.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { bitsOf, hostInt8, int8WithMin, spreadF32 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

type Int8Weights = Extract<LinearWeights, { kind: "int8" }>;

function uploadInt8(gpu: Gpu, label: string, h: HostLinear): Int8Weights {
  const w = uploadLinear(gpu, label, h);
  if (w.kind !== "int8") throw new Error("int8 expected");
  return w;
}

/** Records and submits one matvec_i8 product of `mode` (g, w3 read only where the mode takes them). */
function runMatvec(
  gpu: Gpu,
  mode: MatvecMode,
  c: MatvecConfig,
  a: {
    x: Tensor;
    g: Tensor;
    w1: Int8Weights;
    w3: Int8Weights;
    out: Tensor;
    eps: number;
    accumulate?: boolean;
  },
): void {
  const { w1, w3 } = a;
  const r = gpu.recorder("test");
  recordMatvecI8(r, {
    mode,
    x: a.x,
    g: mode === "linear" ? null : a.g,
    w1: w1.weight,
    s1: w1.scale,
    w3: mode === "gateUp" ? w3.weight : null,
    s3: mode === "gateUp" ? w3.scale : null,
    bias: w1.bias,
    out: a.out,
    eps: a.eps,
    accumulate: a.accumulate,
    config: c,
    label: "test",
  });
  r.submit();
}

/** One product of `mode` with tiling `c` against the CPU reference (inputs from `seed`, else from the shape). */
async function check(
  gpu: Gpu,
  mode: MatvecMode,
  c: MatvecConfig,
  T: number,
  N: number,
  K: number,
  seed = T * 7919 + K * 104729 + N * 31 + c.R * 5 + c.LANES * 3 + c.U + (c.persist ?? 0),
) {
  const withBias = mode !== "gateUp" && (N + T) % 2 === 1;
  const accumulate = mode === "linear" && T % 2 === 1;
  const h1 = hostInt8(N, K, withBias, seed);
  const h3 = hostInt8(N, K, false, seed + 11);
  const xs = randomF32(T * K, seed + 3, -3, 3);
  const g = randomF32(K, seed + 4, 0.5, 1.5);
  const prior = randomF32(T * N, seed + 5);
  const eps = 1e-5;
  const w1 = uploadInt8(gpu, "w1", h1);
  const w3 = uploadInt8(gpu, "w3", h3);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const gw = gpu.uploadTensor("g", "f32", [K], g);
  const out = gpu.uploadTensor("out", "f32", [T, N], prior);
  runMatvec(gpu, mode, c, { x, g: gw, w1, w3, out, eps, accumulate });
  const actual = await gpu.readF32(out);
  let expected: Float32Array;
  if (mode === "linear") {
    expected = linearRef(xs, T, h1);
    if (accumulate) { for (let i = 0; i < expected.length; i++) expected[i] += prior[i]; }
  } else if (mode === "norm") {
    expected = rmsNormLinearRef(xs, T, g, eps, h1);
  } else {
    expected = gateUpSiluRef(xs, T, g, eps, h1, h3);
  }
  try {
    assertNormalisedError(actual, expected, tolerance.matmul.nerr);
  } finally {
    for (const t of [x, gw, out, w1.weight, w1.scale, w1.bias, w3.weight, w3.scale]) t?.buffer.destroy();
  }
}

const configs: MatvecConfig[] = [
  { R: 1, LANES: 32, U: 4 },
  { R: 4, LANES: 32, U: 4 },
  { R: 8, LANES: 32, U: 2 },
  { R: 4, LANES: 16, U: 2 },
  { R: 4, LANES: 8, U: 2 },
  { R: 2, LANES: 64, U: 4 },
  { R: 4, LANES: 128, U: 2 },
  { R: 2, LANES: 256, U: 1 },
  { R: 4, LANES: 256, U: 8 },
  // Persistent: fewer workgroups than row blocks for every shape (N ≥ 45: ≥ 2 blocks of 32 rows, 6 of 8).
  { R: 4, LANES: 32, U: 4, persist: 1 },
  { R: 2, LANES: 16, U: 4, persist: 1 },
  { R: 1, LANES: 32, U: 8, persist: 2 },
  // 16-byte weight loads: one and two chunks in flight, hi rows from w1 (R = 8), wide rows, persistent.
  { R: 4, LANES: 16, U: 1, VEC: true },
  { R: 4, LANES: 16, U: 2, VEC: true },
  { R: 8, LANES: 8, U: 2, VEC: true },
  { R: 4, LANES: 64, U: 2, VEC: true, persist: 1 },
];

const modes = ["linear", "norm", "gateUp"] as const;
/**
 * Each tiling in one mode, crosswise (gate·up takes R ≤ 4): every mode still meets plain, persistent and VEC
 * tilings, and the modes' own code around the shared core runs in each; the model's gate·up tilings follow.
 */
function modeOf(i: number, c: MatvecConfig): typeof modes[number] {
  const mode = modes[i % modes.length];
  return mode === "gateUp" && c.R > 4 ? "norm" : mode;
}

for (const mode of modes) {
  Deno.test(`matvec_i8 ${mode}: every tiling given this mode matches the reference on odd shapes`, async (t) => {
    const gpu = await testGpu();
    // Each tiling compiles its own pipeline per T (most of the test's time), so each gets one shape,
    // rotating: K/4 = 131 or 65 words (an odd tail for every LANES·U) or 9 (fewer words than lanes); T = 5
    // splits the tokens unevenly over the two halves of the norm's sums.
    const shapes = [[1, 77, 524], [3, 301, 36], [8, 45, 524], [5, 61, 260]];
    // VEC takes K % 16 == 0: K/16 = 131 or 65 chunks (an odd tail) or 9 (fewer chunks than lanes).
    const vecShapes = [[1, 77, 2096], [3, 301, 144], [2, 45, 1040], [4, 61, 2096]];
    for (const [i, c] of configs.entries()) {
      if (modeOf(i, c) !== mode) continue;
      const list = c.VEC ? vecShapes : shapes;
      const [T, N, K] = list[(i + mode.length) % list.length];
      await t.step(
        `R${c.R} L${c.LANES} U${c.U} P${c.persist ?? 0}${c.VEC ? " VEC" : ""} T=${T} N=${N} K=${K}`,
        () => check(gpu, mode, c, T, N, K),
      );
    }
    // The gate·up tilings the model takes at token counts the list above does not reach with them.
    for (const T of mode === "gateUp" ? [3, 5, 7] : []) {
      const c = matvecConfig("gateUp", T, 45, 1040)!;
      await t.step(
        `model's T=${T}: R${c.R} L${c.LANES} U${c.U} P${c.persist ?? 0}${c.VEC ? " VEC" : ""}`,
        () => check(gpu, mode, c, T, 45, 1040),
      );
    }
  });
}

/** One product of `mode` at T tokens with tiling `c`; its output. */
async function product(
  gpu: Gpu,
  mode: MatvecMode,
  c: MatvecConfig,
  T: number,
  N: number,
  K: number,
  seed: number,
): Promise<Float32Array> {
  const h1 = int8WithMin(N, K, seed), h3 = int8WithMin(N, K, seed + 11);
  const w1 = uploadInt8(gpu, "w1", h1), w3 = uploadInt8(gpu, "w3", h3);
  const x = gpu.uploadTensor("x", "f32", [T, K], spreadF32(T * K, seed + 3));
  const g = gpu.uploadTensor("g", "f32", [K], randomF32(K, seed + 4, 0.5, 1.5));
  const out = gpu.createTensor("out", "f32", [T, N]);
  try {
    runMatvec(gpu, mode, c, { x, g, w1, w3, out, eps: 1e-5 });
    return await gpu.readF32(out);
  } finally {
    for (const t of [x, g, out, w1.weight, w1.scale, w3.weight, w3.scale]) t.buffer.destroy();
  }
}

// The matrix-vector kernels widen their weights through i8x4_halves (kernels/int8.wgsl: half-float magic
// numbers); the int → float instruction (I2F) widens exactly by definition, so every mode, at one token and
// several, with g on x and on the rows, must give the same sums bit for bit.
Deno.test("matvec_i8: the half-float widening's outputs bit for bit those of int→float", async (t) => {
  const gpu = await testGpu();
  const tilings: [MatvecMode, MatvecConfig, number][] = [
    ["linear", { R: 4, LANES: 32, U: 4 }, 1],
    ["norm", { R: 1, LANES: 32, U: 4 }, 1], // g on the rows (one row a thread)
    ["norm", { R: 4, LANES: 32, U: 4, persist: 1 }, 1], // g on x
    ["gateUp", { R: 4, LANES: 16, U: 2, VEC: true }, 1],
    ["linear", { R: 8, LANES: 8, U: 2, VEC: true }, 1],
    ["norm", { R: 2, LANES: 16, U: 2 }, 3], // g on the rows (3 tokens ≥ 2 rows)
    ["norm", { R: 8, LANES: 32, U: 2 }, 5], // g on x
    ["gateUp", { R: 2, LANES: 8, U: 4 }, 2],
    ["gateUp", { R: 4, LANES: 16, U: 1, VEC: true }, 8],
  ];
  for (const [i, [mode, c, T]] of tilings.entries()) {
    const [N, K] = c.VEC ? [45, 1040] : [61, 524];
    await t.step(`${mode} R${c.R} L${c.LANES} U${c.U}${c.VEC ? " VEC" : ""} T=${T}`, async () => {
      const halves = await product(gpu, mode, { ...c, biased: false }, T, N, K, 100 + i);
      const exact = await product(gpu, mode, { ...c, I2F: true }, T, N, K, 100 + i);
      assert.ok(halves.some((v) => v !== 0));
      assert.deepEqual(bitsOf(halves), bitsOf(exact));
    });
  }
});

// At one token the kernels multiply (b + 128)·2⁻²⁴ and start each word's chains from −I8_BIAS·Σx (biased): not
// the exact sums' rounding, so the bound is the matmul tolerance, on x of every magnitude (a large x meets
// the bias) and for every loop: U word sets, the words left (K/4 = 131 and 261 words), 16-byte chunks.
Deno.test("matvec_i8: biased sums at one token within tolerance of the exact ones, x of every magnitude", async (t) => {
  const gpu = await testGpu();
  const tilings: [MatvecMode, MatvecConfig, number, number][] = [
    ["linear", { R: 4, LANES: 32, U: 4 }, 61, 524],
    ["norm", { R: 1, LANES: 8, U: 1 }, 61, 1044], // g on the rows; the CPU adapter's tiling
    ["norm", { R: 4, LANES: 32, U: 4, persist: 1 }, 61, 524], // g on x
    ["norm", { ...matvecConfig("norm", 1, 8192, 6144)!, persist: 1 }, 61, 1044], // the model's tiling (8 words in flight)
    ["gateUp", { R: 4, LANES: 16, U: 2, VEC: true }, 45, 1040],
    ["linear", { R: 8, LANES: 8, U: 2, VEC: true }, 45, 1040],
  ];
  for (const [i, [mode, c, N, K]] of tilings.entries()) {
    await t.step(`${mode} R${c.R} L${c.LANES} U${c.U}${c.VEC ? " VEC" : ""} K=${K}`, async () => {
      const biased = await product(gpu, mode, { ...c, biased: true }, 1, N, K, 200 + i);
      const exact = await product(gpu, mode, { ...c, I2F: true }, 1, N, K, 200 + i);
      assertNormalisedError(biased, exact, tolerance.matmul.nerr);
    });
  }
  const x = gpu.createTensor("x", "f32", [2, 8]);
  const w = uploadInt8(gpu, "w", int8WithMin(8, 8, 1));
  const out = gpu.createTensor("out", "f32", [2, 8]);
  assert.throws(
    () =>
      runMatvec(gpu, "linear", { R: 1, LANES: 8, U: 1, biased: true }, {
        x,
        g: x,
        w1: w,
        w3: w,
        out,
        eps: 0,
      }),
    /biased sums take one token/,
  );
  for (const b of [x, out, w.weight, w.scale]) b.buffer.destroy();
});

// The model's one-token tilings with biased sums against the CPU reference, 12 seeds a shape. (A single
// output is no test of a tolerance on Σ(a−b)²/Σb²: its sum may cancel: over 180 one-row products each, even
// the exact sums exceeded 1e-10 in 1–2, the biased ones in 2–3; at 67 rows the worst was 6.6e-13 exact,
// 1.2e-12 biased; PERF.md v94.)
Deno.test("matvec_i8: biased sums of the model's tilings within tolerance of the reference, 24 inputs", async (t) => {
  const gpu = await testGpu();
  const tilings: [MatvecMode, MatvecConfig][] = [
    ["norm", { ...matvecConfig("norm", 1, 8192, 6144)!, persist: 1, biased: true }], // the model's wqkv tiling
    ["gateUp", { ...matvecConfig("gateUp", 1, 16384, 6144)!, biased: true }], // the model's gate·up tiling
    ["linear", { R: 4, LANES: 32, U: 4, biased: true }],
  ];
  for (const [mode, c] of tilings) {
    await t.step(`${mode} R${c.R} L${c.LANES} U${c.U}${c.VEC ? " VEC" : ""}`, async () => {
      for (const K of [64, 528]) {
        for (let s = 0; s < 12; s++) await check(gpu, mode, c, 1, 67, K, K * 104729 + s * 977 + 8017);
      }
    });
  }
});

// Where the device flushes subnormal half floats (Gpu.halfSubnormals false), one token takes the exact
// widening: bit for bit the int → float sums, and a biased tiling asked for by hand is refused.
Deno.test("matvec_i8: a device that flushes subnormal halves gets the exact sums at one token", async () => {
  const gpu = await testGpu();
  const kept = gpu.halfSubnormals;
  gpu.halfSubnormals = false;
  try {
    const c: MatvecConfig = { R: 4, LANES: 32, U: 4, persist: 1 };
    const auto = await product(gpu, "norm", c, 1, 61, 524, 300);
    const exact = await product(gpu, "norm", { ...c, I2F: true }, 1, 61, 524, 300);
    assert.deepEqual(bitsOf(auto), bitsOf(exact));
    await assert.rejects(() => product(gpu, "norm", { ...c, biased: true }, 1, 61, 524, 300), /flushes/);
  } finally {
    gpu.halfSubnormals = kept;
  }
});

// wo's and w2's tilings at 2–6 tokens with 265–396 row blocks (here 301 of 16 rows) take the shorter reduction
// array, whose layout packs a round's tokens by the rows a thread has: the shapes above stay under 265 blocks.
Deno.test("matvec_i8: plain linears of 2–6 tokens in 301 row blocks (the shorter reduction array)", async (t) => {
  const gpu = await testGpu();
  const N = 16 * 300 + 5, K = 1040; // 65 chunks or 260 words a row: an odd tail for every lane count
  for (const T of [2, 3, 5, 6]) {
    const c = T === 2 ? matvecConfig("linear", 2, 6144, 16384)! : matvecConfig("linear", T, N, K)!;
    assert.equal(matvecReductionLength("linear", c, T, matvecRowBlocks(c, N), 0), compactReductionFloats);
    await t.step(
      `T=${T} R${c.R} L${c.LANES} U${c.U}${c.VEC ? " VEC" : ""}`,
      () => check(gpu, "linear", c, T, N, K),
    );
  }
});

Deno.test("matvecReductionLength: the shorter array only for plain linears of 2–6 tokens in 265–396 blocks", () => {
  const wo = (T: number) => matvecConfig("linear", T, 6144, 6144)!;
  for (const T of [3, 4, 5, 6]) {
    assert.equal(matvecReductionLength("linear", wo(T), T, 384, 0), compactReductionFloats);
  }
  const w2 = matvecConfig("linear", 2, 6144, 16384)!;
  assert.equal(matvecReductionLength("linear", w2, 2, 384, 0), compactReductionFloats);
  for (const T of [7, 8]) { // slower there (PERF.md v95)
    assert.equal(matvecReductionLength("linear", wo(T), T, 384, 0), fullReductionFloats);
  }
  assert.equal(matvecReductionLength("linear", wo(3), 1, 384, 0), fullReductionFloats); // one token
  assert.equal(matvecReductionLength("linear", wo(3), 3, 264, 0), fullReductionFloats); // two at once suffice
  assert.equal(matvecReductionLength("linear", wo(3), 3, 397, 0), fullReductionFloats);
  assert.equal(matvecReductionLength("linear", wo(3), 3, 384, 264), fullReductionFloats); // persistent
  assert.equal(matvecReductionLength("norm", wo(3), 3, 384, 0), fullReductionFloats);
  assert.equal(matvecReductionLength("gateUp", { R: 4, LANES: 16, U: 1 }, 3, 384, 0), fullReductionFloats);
  // Whatever the tiling, a shorter array holds what its packed layout needs (the full one fits any tiling).
  for (const c of configs) {
    for (const mode of modes) {
      for (let T = 1; T <= 8; T++) {
        const length = matvecReductionLength(mode, c, T, 300, 0);
        if (length < fullReductionFloats) {
          assert.ok(matvecReductionFloats(mode, c, T) <= length, `${mode} R${c.R} L${c.LANES} T=${T}`);
        }
      }
    }
  }
  assert.ok(matvecReductionFloats("linear", { R: 8, LANES: 8, U: 1 }, 3) > compactReductionFloats);
  assert.equal(matvecReductionLength("linear", { R: 8, LANES: 8, U: 1 }, 3, 300, 0), fullReductionFloats);
});

Deno.test("persistentGroups: fewer workgroups than blocks or none, at most 1024 blocks each", () => {
  assert.equal(persistentGroups(768, 264), 264);
  assert.equal(persistentGroups(264, 264), 0);
  assert.equal(persistentGroups(100, 264), 0);
  assert.equal(persistentGroups(100, 0), 0);
  assert.equal(persistentGroups(100, undefined), 0);
  assert.equal(persistentGroups(65545, 2), 65);
});

Deno.test("matvecConfig: 16-byte weight loads for gate/up and for plain linears at 2 tokens, K % 16 == 0", () => {
  assert.equal(matvecConfig("gateUp", 1, 16384, 6144)?.VEC, true);
  assert.equal(matvecConfig("gateUp", 4, 16384, 6144)?.U, 1); // two chunks in flight spill there
  assert.equal(matvecConfig("gateUp", 2, 16384, 6144)?.VEC, true);
  assert.notEqual(matvecConfig("gateUp", 8, 16384, 6144)?.VEC, true); // slower in the model (PERF.md v39)
  assert.equal(matvecConfig("linear", 2, 6144, 16384)?.VEC, true);
  assert.notEqual(matvecConfig("linear", 3, 6144, 16384)?.VEC, true);
  assert.equal(matvecConfig("linear", 1, 6144, 6144), null); // linear_matvec
  assert.notEqual(matvecConfig("norm", 1, 92553, 6144)?.VEC, true); // the LM head: no gain in the step
  assert.equal(matvecConfig("norm", 1, 8192, 6144)?.U, 8); // wqkv and the LM head at one token (PERF.md v93)
  assert.equal(matvecConfig("norm", 2, 8192, 6144)?.U, 4);
  assert.notEqual(matvecConfig("gateUp", 1, 16384, 6152)?.VEC, true); // K not whole chunks
});
