import assert from "node:assert/strict";
import { uploadLinear } from "../../src/ops/linear.ts";
import {
  createLlmInt8RowsScratch,
  destroyLlmInt8RowsScratch,
  llmInt8Rows,
  type LlmInt8RowsOptions,
  matvecLlmInt8,
} from "../../src/ops/matvec_dp4a.ts";
import { llmInt8QuantizeRef, roundHalfEven } from "../../src/ref/llm_int8.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

/** The rows as the layer multiplies them, in f64: x or RMSNorm(x)·g. */
function rowValues(
  x: Float32Array,
  T: number,
  K: number,
  mode: "plain" | "norm",
  g: Float32Array,
  eps: number,
) {
  const v = new Float32Array(T * K);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let k = 0; k < K; k++) ss += x[t * K + k] ** 2;
    const r = 1 / Math.sqrt(ss / K + eps);
    for (let k = 0; k < K; k++) {
      v[t * K + k] = mode === "plain" ? x[t * K + k] : x[t * K + k] * r * g[k];
    }
  }
  return v;
}

interface Case {
  T: number;
  K: number;
  N: number;
  mode: "plain" | "norm";
  outlierRow: boolean; // one row entirely ≥ θ: its scale is 0 and its int8 row all zero
  accumulate: boolean;
  /** norm: Σx² given in this many parts (as a matrix kernel's workgroups leave it), not summed over x. */
  sums?: number;
}

/** Row t's Σx² cut into `parts` uneven runs of columns: [8, stride] with stride > parts, the rest NaN. */
function squaresInParts(x: Float32Array, T: number, K: number, parts: number) {
  const stride = parts + 3;
  const out = new Float32Array(8 * stride).fill(NaN);
  for (let t = 0; t < T; t++) {
    for (let p = 0; p < parts; p++) {
      const [a, b] = [p, p + 1].map((i) => Math.floor((K * i * i) / (parts * parts)));
      let ss = 0;
      for (let k = a; k < b; k++) ss += x[t * K + k] ** 2;
      out[t * stride + p] = ss;
    }
  }
  return { data: out, stride };
}

Deno.test("llm_int8_rows + matvec_dp4a follow bitsandbytes' LLM.int8 on odd shapes", async (t) => {
  const gpu = await testGpu();
  const cases: Case[] = [
    { T: 3, K: 260, N: 45, mode: "plain", outlierRow: false, accumulate: true },
    { T: 5, K: 132, N: 101, mode: "norm", outlierRow: false, accumulate: false },
    { T: 8, K: 196, N: 33, mode: "plain", outlierRow: true, accumulate: true },
    { T: 1, K: 68, N: 71, mode: "norm", outlierRow: false, accumulate: false },
    { T: 2, K: 100, N: 29, mode: "plain", outlierRow: false, accumulate: false }, // no outliers
    // K/4 > 3 × 256: every one of the norm sum's four loads a round is used.
    { T: 2, K: 3204, N: 21, mode: "norm", outlierRow: false, accumulate: true },
    // K/4 = 2049: 65 column blocks, past the 32 that one tree level of 16 covers; the outlier at K − 3 is in
    // the last block, so every block's count must reach the list's length.
    { T: 3, K: 8196, N: 23, mode: "plain", outlierRow: false, accumulate: false },
    // Eight rows: the norm's shares are summed by 32 threads a row, all 256 threads busy.
    { T: 8, K: 2068, N: 27, mode: "norm", outlierRow: false, accumulate: false },
    // The norm from Σx² in parts: 389 of them (more than one round of four loads for 32 threads), and 3.
    { T: 8, K: 2068, N: 27, mode: "norm", outlierRow: false, accumulate: false, sums: 389 },
    { T: 3, K: 132, N: 45, mode: "norm", outlierRow: false, accumulate: true, sums: 3 },
  ];
  for (const c of cases) {
    const { T, K, N, mode } = c;
    const name = `T=${T} K=${K} N=${N} ${mode}${c.sums ? ` from ${c.sums} Σx² parts` : ""}`;
    await t.step(`${name}${c.outlierRow ? " outlier row" : ""}`, async () => {
      const seed = T * 31 + K * 7 + N;
      const xs = randomF32(T * K, seed, -2.5, 2.5);
      const g = randomF32(K, seed + 1, 0.5, 1.5);
      const eps = 1e-6;
      if (K !== 100) {
        // Outliers in a few columns and only some rows: raw values for plain, a large norm weight for
        // norm (every row of that column).
        for (const [row, col] of [[0, 5], [T - 1, 5], [Math.min(1, T - 1), K - 3], [T - 1, 64]]) {
          if (mode === "plain") xs[row * K + col] = row % 2 ? -7.5 : 9.25;
        }
        if (mode === "norm") g[17] = g[K - 5] = 9;
      }
      if (c.outlierRow) {
        for (let k = 0; k < K; k++) xs[2 * K + k] = (k % 2 ? -1 : 1) * (6 + (k % 5));
      }
      const v = rowValues(xs, T, K, mode, g, eps);
      const ref = llmInt8QuantizeRef(v, T, K, 6);
      assert.ok(
        K === 100 ? ref.outliers.length === 0 : ref.outliers.length >= 2,
        "the case has the outliers it means to",
      );

      const host = hostInt8(N, K, false, seed + 2);
      const w = uploadLinear(gpu, "w", host);
      const x = gpu.uploadTensor("x", "f32", [T, K], xs);
      const gw = gpu.uploadTensor("g", "f32", [K], g);
      const prior = randomF32(T * N, seed + 4);
      const out = gpu.uploadTensor("out", "f32", [T, N], prior);
      const scratch = createLlmInt8RowsScratch(gpu, "rows", 8, K);
      const parts = c.sums ? squaresInParts(xs, T, K, c.sums) : null;
      const sq = parts ? gpu.uploadTensor("squares", "f32", [8, parts.stride], parts.data) : null;
      const sums = sq ? { squares: sq, parts: c.sums! } : undefined;
      const opts: LlmInt8RowsOptions = mode === "norm" ? { norm: { weight: gw, eps, sums } } : {};
      const r = gpu.recorder("test");
      const a = llmInt8Rows(r, x, scratch, opts);
      matvecLlmInt8(r, a, w, out, { accumulate: c.accumulate });
      r.submit();

      const count = await gpu.readU32(scratch.outliers);
      assert.deepEqual([...count.subarray(1, 1 + count[0])], ref.outliers, "outlier columns, ascending");
      const got = {
        q: new Int8Array(await gpu.readBytes(scratch.q)).subarray(0, T * K),
        xs: (await gpu.readF32(scratch.xs)).subarray(0, T),
        values: mode === "plain" ? v : (await gpu.readF32(scratch.values)).subarray(0, T * K),
      };
      if (mode !== "plain") assertClose(got.values, v, 1e-6, 1e-5);
      assertClose(got.xs, Array.from(ref.sca, (s) => s / 127), 0, 4e-7);
      if (c.outlierRow) assert.equal(got.xs[2], 0, "a row with every value ≥ θ has scale 0");
      for (let i = 0; i < T * K; i++) {
        // The GPU rounds its own values with its own 127/sca: only a value a hair from a .5 tie may differ.
        const tt = Math.floor(i / K);
        const scaled = got.values[i] * (got.xs[tt] > 0 ? 1 / got.xs[tt] : 0);
        const want = ref.flags[i % K] ? 0 : roundHalfEven(scaled);
        const nearTie = Math.abs(Math.abs(scaled % 1) - 0.5) < 1e-3;
        if (got.q[i] !== want && !(nearTie && Math.abs(got.q[i] - want) === 1)) {
          throw new Error(`row ${tt}, column ${i % K}: q ${got.q[i]}, expected ${want} (${scaled})`);
        }
      }
      // The product from the GPU's own int8 rows: integer sums, the outlier columns from the values.
      const want = new Float32Array(T * N);
      for (let tt = 0; tt < T; tt++) {
        for (let n = 0; n < N; n++) {
          const cb = host.weight as Int8Array;
          let acc = 0, outl = 0;
          for (let k = 0; k < K; k++) acc += got.q[tt * K + k] * cb[n * K + k];
          for (const col of ref.outliers) outl += got.values[tt * K + col] * cb[n * K + col];
          const scale = Math.fround(host.scb![n] / 127);
          want[tt * N + n] = scale * (got.xs[tt] * acc + outl) + (c.accumulate ? prior[tt * N + n] : 0);
        }
      }
      assertNormalisedError(await gpu.readF32(out), want, tolerance.matmul.nerr);
      destroyLlmInt8RowsScratch(scratch);
      for (const b of [x, gw, out, w.weight, ...(w.kind === "int8" ? [w.scale] : [])]) b.buffer.destroy();
      sq?.buffer.destroy();
    });
  }
});

Deno.test("llm_int8_rows and matvec_dp4a reject what they cannot take", async () => {
  const gpu = await testGpu();
  const scratch = createLlmInt8RowsScratch(gpu, "rows", 2, 8);
  const x3 = gpu.createTensor("x3", "f32", [3, 8]);
  const r = gpu.recorder("test");
  assert.throws(() => llmInt8Rows(r, x3, scratch), /3 rows, the scratch holds 1..2/);
  assert.throws(() => createLlmInt8RowsScratch(gpu, "big", 9, 8), /rows 1..8/);
  assert.throws(() => createLlmInt8RowsScratch(gpu, "wide", 1, 16388), /16384/);
  const x = gpu.createTensor("x", "f32", [2, 8]);
  const a = llmInt8Rows(r, x, scratch);
  const w = uploadLinear(gpu, "w", hostInt8(42, 8, false, 1));
  const w3 = uploadLinear(gpu, "w3", hostInt8(8, 8, false, 2));
  const out = gpu.createTensor("out", "f32", [2, 42]);
  assert.throws(() => matvecLlmInt8(r, a, w, out, { up: w3 }), /weights 42,8 \/ 8,8 vs rows of 8/);
  assert.throws(() => matvecLlmInt8(r, a, w3, out), /out/);
  // Σx² in more parts than its tensor holds; Σout² parts for a gate·up product, or too few columns for
  // the 42 rows' workgroups (8 rows each at R1 L32).
  const g = gpu.createTensor("g", "f32", [8]);
  const sq = gpu.createTensor("sq", "f32", [8, 4]);
  const gu = gpu.createTensor("gu", "f32", [2, 8]);
  const norm = { weight: g, eps: 1e-6, sums: { squares: sq, parts: 5 } };
  assert.throws(() => llmInt8Rows(r, x, scratch, { norm }), /5 parts of Σx² in a \[8, 4\] tensor/);
  assert.throws(() => matvecLlmInt8(r, a, w3, gu, { up: w3, squares: sq }), /Σout² takes no gate·up/);
  const config = { R: 1, LANES: 32, U: 1 } as const;
  assert.throws(() => matvecLlmInt8(r, a, w, out, { squares: sq, config }), /\[8, ≥ 6\]/);
  destroyLlmInt8RowsScratch(scratch);
  for (const b of [x3, x, out, g, sq, gu]) b.buffer.destroy();
});
