import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  checkTiledConfig,
  type HostLinear,
  linear,
  type LinearMatvecForm,
  linearMatvecForms,
  type LinearOptions,
  type LinearVariant,
  linearVariant,
  type LinearWeights,
  matvecFormApplies,
  recordLinear,
  splitOf,
  splitTargetWorkgroups,
  tiledConfig,
  tiledConfigName,
  tiledConfigs,
  tiledSplits,
  uploadLinear,
} from "../../src/ops/linear.ts";
import { matvecConfig } from "../../src/ops/matvec_i8.ts";
import { linearRef } from "../../src/ref/linear.ts";
import { randomF32, randomI8 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { bitsOf, int8WithMin, spreadF32 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

function hostLinear(
  kind: "int8" | "float",
  N: number,
  K: number,
  withBias: boolean,
  seed: number,
): HostLinear {
  return {
    kind,
    // Weights of a realistic size: int8 rows with SCB (per-row absmax) in [0.02, 0.2).
    weight: kind === "int8" ? randomI8(N * K, seed) : randomF32(N * K, seed, -0.1, 0.1),
    scb: kind === "int8" ? randomF32(N, seed + 1, 0.02, 0.2) : undefined,
    bias: withBias ? randomF32(N, seed + 2) : null,
    outFeatures: N,
    inFeatures: K,
  };
}

/** Whether the matvec variant of this layer is linear_matvec (int8 at T ≥ 2 may go to matvec_i8). */
function byLinearMatvec(gpu: Gpu, kind: "int8" | "float", T: number, K: number, N: number): boolean {
  return kind === "float" || matvecConfig("linear", T, N, K, gpu.isFallbackAdapter) === null;
}

/** linear_matvec's forms that apply: every lane count; two rows a lane for int8 at one token. */
function matvecForms(kind: "int8" | "float", T: number): LinearMatvecForm[] {
  return linearMatvecForms.filter((f) => matvecFormApplies(f, T, kind === "int8"));
}

/** Each kernel variant once; where the matvec variant is linear_matvec, once in each of its forms. */
function kernelRuns(
  gpu: Gpu,
  variants: readonly ("matvec" | "tiled")[],
  kind: "int8" | "float",
  T: number,
  K: number,
  N: number,
): [LinearVariant, LinearMatvecForm | undefined][] {
  return variants.flatMap((v): [LinearVariant, LinearMatvecForm | undefined][] =>
    v === "matvec" && byLinearMatvec(gpu, kind, T, K, N)
      ? matvecForms(kind, T).map((form) => [v, form])
      : [[v, undefined]]
  );
}

function formName(f: LinearMatvecForm): string {
  return `${f.lanes} lanes${f.twoRows ? ", two rows a lane" : ""}${f.biased ? ", biased" : ""}`;
}

/** Runs one linear layer with each applicable kernel and checks it against the CPU reference. */
async function checkLinear(
  gpu: Gpu,
  kind: "int8" | "float",
  T: number,
  K: number,
  N: number,
  withBias: boolean,
): Promise<number> {
  const seed = T * 7919 + K * 104729 + N * 31 + (withBias ? 1 : 0) + (kind === "int8" ? 5 : 0);
  const host = hostLinear(kind, N, K, withBias, seed);
  const xs = randomF32(T * K, seed + 3);
  const w = uploadLinear(gpu, `w${N}x${K}`, host);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const expected = linearRef(xs, T, host);
  const variants = linearVariant(T, K, w) === "matvec" ? ["matvec", "tiled"] as const : ["tiled"] as const;
  for (const [variant, matvecForm] of kernelRuns(gpu, variants, kind, T, K, N)) {
    const out = gpu.createTensor("out", "f32", [T, N]);
    const r = gpu.recorder("test");
    recordLinear(r, x, w, out, variant, { matvecForm });
    r.submit();
    const actual = await gpu.readF32(out);
    try {
      assertNormalisedError(actual, expected, tolerance.matmul.nerr);
    } catch (e) {
      const what = `${variant}${matvecForm ? ` (${formName(matvecForm)})` : ""}`;
      throw new Error(`${what} ${kind} T=${T} K=${K} N=${N} bias=${withBias}: ${(e as Error).message}`);
    }
    out.buffer.destroy();
  }
  for (const t of [x, w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
  return variants.length;
}

for (const kind of ["int8", "float"] as const) {
  Deno.test(`linear (${kind}) matches the CPU reference over a grid of odd shapes, both kernels`, async () => {
    const gpu = await testGpu();
    let i = 0;
    for (const T of [1, 2, 5, 33, 130]) {
      for (const K of [4, 12, 64, 100, 260]) {
        for (const N of [1, 3, 67, 300]) await checkLinear(gpu, kind, T, K, N, i++ % 2 === 0);
      }
    }
  });
}

Deno.test("linear handles bigger layers: matvec at T = 8, N past one grid row", async () => {
  const gpu = await testGpu();
  // matvec at its largest T, both encodings
  assert.equal(await checkLinear(gpu, "int8", 8, 1024, 515, true), 2);
  // one token at two rows a lane with 64 lanes: two whole rounds of 4 words a lane and a tail of 5 words
  assert.equal(await checkLinear(gpu, "int8", 1, 2068, 37, true), 2);
  // two tokens of int8 rows whose K takes linear_matvec there (a two-row decode step's wo; matvecConfig):
  // whole rounds of 4 words a lane and a tail of 4 words at 32 lanes
  assert.equal(await checkLinear(gpu, "int8", 2, 2064, 37, true), 2);
  assert.equal(await checkLinear(gpu, "float", 3, 1028, 257, false), 2);
  // tiled with several tiles in both directions and a K not dividing the 16-wide step
  assert.equal(await checkLinear(gpu, "int8", 300, 520, 389, true), 1);
  // more than 65535 × 8 rows: the matvec grid folds into a second dimension
  assert.equal(await checkLinear(gpu, "int8", 1, 16, 65535 * 8 + 9, false), 2);
});

Deno.test("linear picks matvec for decode and the tiled kernel for prefill", async () => {
  const gpu = await testGpu();
  const w = uploadLinear(gpu, "pick", hostLinear("int8", 4, 32, false, 1));
  assert.equal(linearVariant(8, 32, w), "matvec");
  assert.equal(linearVariant(9, 32, w), "tiled");
  assert.equal(linearVariant(1, 30, w), "tiled"); // x rows not 16-byte aligned
  const x = gpu.createTensor("x", "f32", [2, 31]);
  const out = gpu.createTensor("out", "f32", [2, 4]);
  assert.throws(
    () => linear(gpu.recorder("t"), x, w, out),
    /linear pick.weight weight: expected \[4, 31\] i8x4, got pick.weight \[4, 32\] i8x4/,
  );
});

Deno.test("linear with accumulate adds the layer's output to what out holds (the residual add)", async () => {
  const gpu = await testGpu();
  for (const [T, K, N] of [[1, 64, 67], [3, 100, 33], [130, 260, 67]]) {
    for (const kind of ["int8", "float"] as const) {
      const seed = T * 31 + K + N;
      const host = hostLinear(kind, N, K, true, seed);
      const xs = randomF32(T * K, seed + 3), residual = randomF32(T * N, seed + 4);
      const w = uploadLinear(gpu, "w", host);
      const x = gpu.uploadTensor("x", "f32", [T, K], xs);
      const layer = linearRef(xs, T, host);
      const expected = layer.map((v, i) => Math.fround(v + residual[i]));
      const variants = linearVariant(T, K, w) === "matvec"
        ? ["matvec", "tiled"] as const
        : ["tiled"] as const;
      for (const [variant, matvecForm] of kernelRuns(gpu, variants, kind, T, K, N)) {
        const out = gpu.uploadTensor("out", "f32", [T, N], residual);
        const r = gpu.recorder("test");
        recordLinear(r, x, w, out, variant, { accumulate: true, matvecForm });
        r.submit();
        assertNormalisedError(await gpu.readF32(out), expected, tolerance.matmul.nerr);
      }
    }
  }
  const x = gpu.createTensor("x", "f32", [2, 8]);
  const w = uploadLinear(gpu, "w", hostLinear("float", 8, 8, false, 1));
  assert.throws(() => linear(gpu.recorder("t"), x, w, x), /must not alias x/);
  // two rows a lane: int8 weights at one token only
  const twoRows = { matvecForm: { lanes: 64, twoRows: true } } as const;
  const out = gpu.createTensor("out", "f32", [2, 8]);
  assert.throws(() => recordLinear(gpu.recorder("t"), x, w, out, "matvec", twoRows), /two rows a lane/);
  const w8 = uploadLinear(gpu, "w8", hostLinear("int8", 8, 8, false, 2));
  assert.throws(() => recordLinear(gpu.recorder("t"), x, w8, out, "matvec", twoRows), /two rows a lane/);
});

/** The matvec variant of layer w on x in `matvecForm`: its output, [T, N]. */
async function matvecOutput(
  gpu: Gpu,
  x: Tensor,
  w: LinearWeights,
  matvecForm: LinearMatvecForm,
): Promise<Float32Array> {
  const out = gpu.createTensor("out", "f32", [x.shape[0], w.weight.shape[0]]);
  const r = gpu.recorder("test");
  recordLinear(r, x, w, out, "matvec", { matvecForm });
  r.submit();
  try {
    return await gpu.readF32(out);
  } finally {
    out.buffer.destroy();
  }
}

// linear_matvec at one token, with one row a lane or two (whose loop and x loads differ), sums each row in
// the order the same layer at two tokens does, through the same exact widening (i8x4_halves, tested against
// int → float in matvec_i8_test.ts): token 0's outputs must agree bit for bit, x of every magnitude.
Deno.test("linear_matvec at one token: bit for bit token 0 of the same layer at two tokens", async () => {
  const gpu = await testGpu();
  const [N, K] = [45, 1040]; // K ≤ 8192, K % 16 == 0: linear_matvec at two tokens too (matvecConfig)
  const host = int8WithMin(N, K, 7);
  host.bias = randomF32(N, 8);
  const w = uploadLinear(gpu, "w", host);
  const x0 = spreadF32(K, 9);
  const x1 = new Float32Array(2 * K);
  x1.set(x0);
  x1.set(spreadF32(K, 10), K);
  const run = async (xs: Float32Array, T: number, matvecForm: LinearMatvecForm) => {
    const x = gpu.uploadTensor("x", "f32", [T, K], xs);
    const y = await matvecOutput(gpu, x, w, matvecForm);
    x.buffer.destroy();
    return y.slice(0, N);
  };
  for (
    const [one, two] of [[{ lanes: 32 }, { lanes: 32 }], [{ lanes: 8 }, { lanes: 8 }], [
      { lanes: 8, twoRows: true },
      { lanes: 8 },
    ]] as [LinearMatvecForm, LinearMatvecForm][]
  ) {
    const a = await run(x0, 1, one), b = await run(x1, 2, two);
    assert.ok(a.some((v) => v !== 0));
    assert.deepEqual(bitsOf(a), bitsOf(b), `${formName(one)} against ${formName(two)} at two tokens`);
  }
  for (const t of [w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
});

// Biased sums ((b + 128)·2⁻²⁴, each word's chains from −I8_BIAS·Σx) are not the exact sums' rounding: within
// the matmul tolerance of them on x of every magnitude, over whole rounds of four words and a tail
// (K/4 = 517 words).
Deno.test("linear_matvec at one token: biased sums within tolerance of the exact ones, x of every magnitude", async () => {
  const gpu = await testGpu();
  const [N, K] = [37, 2068];
  const host = int8WithMin(N, K, 17);
  host.bias = randomF32(N, 18);
  const w = uploadLinear(gpu, "w", host);
  const x = gpu.uploadTensor("x", "f32", [1, K], spreadF32(K, 19));
  for (const lanes of [64, 8] as const) {
    const biased = await matvecOutput(gpu, x, w, { lanes, twoRows: true, biased: true });
    const exact = await matvecOutput(gpu, x, w, { lanes, twoRows: true });
    assertNormalisedError(biased, exact, tolerance.matmul.nerr, `${lanes} lanes`);
  }
  const one = gpu.createTensor("out", "f32", [1, N]);
  assert.throws(
    () => recordLinear(gpu.recorder("t"), x, w, one, "matvec", { matvecForm: { lanes: 8, biased: true } }),
    /biased sums two rows a lane/,
  );
  for (const t of [x, one, w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
});

/**
 * The tiled kernel alone, on fresh inputs with `seed`, against the CPU reference; with `accumulate`, out
 * starts as a random residual. K % 4 ≠ 0 takes the kernel's scalar-load path, K % BK ≠ 0 a partial last step.
 */
async function checkTiled(
  gpu: Gpu,
  kind: "int8" | "float",
  [T, K, N]: readonly number[],
  opts: LinearOptions & { bias: boolean; seed: number },
): Promise<void> {
  const host = hostLinear(kind, N, K, opts.bias, opts.seed);
  const xs = randomF32(T * K, opts.seed + 3);
  const residual = randomF32(T * N, opts.seed + 4);
  const w = uploadLinear(gpu, `w${N}x${K}`, host);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const layer = linearRef(xs, T, host);
  const expected = opts.accumulate ? layer.map((v, i) => Math.fround(v + residual[i])) : layer;
  const out = opts.accumulate
    ? gpu.uploadTensor("out", "f32", [T, N], residual)
    : gpu.createTensor("out", "f32", [T, N]);
  const r = gpu.recorder("test");
  recordLinear(r, x, w, out, "tiled", opts);
  r.submit();
  const actual = await gpu.readF32(out);
  try {
    assertNormalisedError(actual, expected, tolerance.matmul.nerr);
  } catch (e) {
    const tiling = tiledConfigName(
      opts.tiled ?? tiledConfig(T, N, K, w.kind === "f32", gpu.isFallbackAdapter),
    );
    throw new Error(
      `${tiling} ${kind} T=${T} K=${K} N=${N} bias=${opts.bias} accumulate=${!!opts.accumulate}: ` +
        (e as Error).message,
    );
  }
  for (const t of [x, out, w.weight, w.bias, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
}

Deno.test("linear_tiled matches the CPU reference at sizes that divide no tile, T = 1 to 130", async () => {
  const gpu = await testGpu();
  let seed = 1000;
  for (const kind of ["int8", "float"] as const) {
    for (const T of [1, 37, 130]) {
      // K = 20: int8 rows of 5 words; K = 264: a partial last k step; K = 30, 263: rows not 16-byte aligned
      for (const K of [20, 264, 30, 263]) {
        const bias = seed % 2 === 0, accumulate = seed % 3 === 0;
        await checkTiled(gpu, kind, [T, K, 129], { bias, accumulate, seed: seed++ });
      }
    }
  }
});

Deno.test("linear_tiled matches the CPU reference with every tiling it supports", async () => {
  const gpu = await testGpu();
  let seed = 2000;
  // Each tiling with both weight kinds and both shapes (partial tiles and steps with 16-byte rows; rows not
  // 16-byte aligned), crosswise: all four pairs of each took ~40 s of the suite on llvmpipe, and the launcher's
  // tilings get every pair in the test above.
  const shapes = [[130, 264, 129], [37, 30, 67]];
  for (const [i, tiled] of tiledConfigs.entries()) {
    for (const [j, kind] of (["int8", "float"] as const).entries()) {
      await checkTiled(gpu, kind, shapes[(i + j) % 2], {
        tiled,
        bias: seed % 2 === 0,
        accumulate: seed % 3 === 0,
        seed: seed++,
      });
    }
  }
});

Deno.test("linear_tiled with split K (partials, then linear_split_sum) matches the CPU reference", async () => {
  const gpu = await testGpu();
  // Partials land in the front of a scratch of garbage: a split that stored nothing would show.
  const scratch = gpu.uploadTensor("split_k", "f32", [7 * 70 * 129], randomF32(7 * 70 * 129, 77, -1e3, 1e3));
  let seed = 3000;
  // K = 264 in 3 splits of 96: a partial step in the last; K = 263: rows not 16-byte aligned; T = 70: two
  // tile rows of 64; 7 splits of 1000: the last one short.
  const cases: [number[], number][] = [[[5, 264, 67], 3], [[37, 263, 129], 2], [[70, 1000, 129], 7]];
  for (const kind of ["int8", "float"] as const) {
    for (const [shape, splits] of cases) {
      for (const tiled of [undefined, tiledConfigs[10], tiledConfigs[21]]) {
        await checkTiled(gpu, kind, shape, {
          tiled,
          splitK: scratch,
          splits,
          bias: seed % 2 === 0,
          accumulate: seed % 3 !== 0,
          seed: seed++,
        });
      }
    }
  }
  scratch.buffer.destroy();
});

Deno.test("splitOf leaves no split empty; tiledSplits splits few tiles and never past the scratch", () => {
  const c = tiledConfigs[9]; // 64×64, BK 16
  for (const [K, splits] of [[264, 3], [1000, 7], [6144, 16], [100, 50]]) {
    const s = splitOf(K, c, splits);
    assert.equal(s.kslice % c.BK, 0);
    assert.ok(s.kslice * (s.splits - 1) < K && s.kslice * s.splits >= K, `K=${K} splits=${splits}`);
  }
  // One row of tiles at the model's widths: 96 tiles of wo split until ~splitTargetWorkgroups.
  assert.equal(tiledSplits(32, 6144, 6144, c, 1e9), Math.round(splitTargetWorkgroups / 96));
  // Enough tiles already (w1's 256): no split; a short K keeps ≥ 8 steps a split; the scratch bounds the
  // count.
  assert.equal(tiledSplits(32, 16384, 6144, c, 1e9), 1);
  assert.equal(tiledSplits(1800, 6144, 6144, c, 1e9), 1);
  assert.equal(tiledSplits(32, 6144, 256, c, 1e9), 2);
  assert.equal(tiledSplits(32, 6144, 6144, c, 3 * 32 * 6144), 3);
});

Deno.test("checkTiledConfig refuses tilings the kernel cannot run", () => {
  for (const c of tiledConfigs) checkTiledConfig(c);
  // 128×128 at BK = 32 needs 64 KiB of workgroup memory; 4 threads along N is not whole warps
  assert.throws(() => checkTiledConfig({ TX: 16, TY: 16, CW: 2, BK: 32, GM: 8 }), /unsupported tiling/);
  assert.throws(() => checkTiledConfig({ TX: 4, TY: 16, CW: 2, BK: 16, GM: 8 }), /unsupported tiling/);
  // 16×16 accumulators a thread are more than the kernel names; 12-row micro-tiles do not exist
  assert.throws(() => checkTiledConfig({ TX: 8, TY: 8, RH: 4, CW: 4, BK: 8, GM: 8 }), /unsupported tiling/);
  assert.throws(
    () => checkTiledConfig({ TX: 16, TY: 8, RH: 3 as 2, CW: 2, BK: 8, GM: 8 }),
    /unsupported tiling/,
  );
  // 256×128 at BK = 16: 48 KiB of workgroup memory, past llvmpipe's 32 KiB
  assert.throws(
    () => checkTiledConfig({ TX: 16, TY: 16, RH: 4, CW: 2, BK: 16, GM: 8 }),
    /unsupported tiling/,
  );
});
