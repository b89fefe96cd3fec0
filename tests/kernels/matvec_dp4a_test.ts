import assert from "node:assert/strict";
import { uploadLinear } from "../../src/ops/linear.ts";
import { rowsView, type Tensor } from "../../src/gpu/tensor.ts";
import type { HostLinear } from "../../src/ops/linear.ts";
import {
  createLlmInt8RowsScratch,
  createPairedRowsScratch,
  destroyLlmInt8RowsScratch,
  destroyPairedRowsScratch,
  type Dp4aConfig,
  dp4aCpuConfig,
  dp4aTokensPerRound,
  llmInt8Rows,
  llmInt8RowsGroups,
  type LlmInt8RowsOptions,
  matvecLlmInt8,
  type PairedRowsScratch,
  pairRows,
  type QuantizedRows,
} from "../../src/ops/matvec_dp4a.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

/** What the GPU's own int8 rows give (checked by llm_int8_rows_test): exact integer sums, the outlier columns in f32. */
interface Int8Rows {
  q: Int8Array; // [rows, K]
  scale: Float32Array; // [rows]: sca/127
  cols: number[]; // the outlier columns
  values: Float32Array; // [rows, K]: the rows as multiplied
}

/** Row tt's output n: LLM.int8's product with the weights of `hosts` (gate·up: silu(gate)·up), + prior. */
function expectedOutput(hosts: HostLinear[], K: number, x: Int8Rows, tt: number, n: number, prior?: number) {
  const product = (h: HostLinear) => {
    const cb = h.weight as Int8Array;
    let acc = 0, outl = 0;
    for (let k = 0; k < K; k++) acc += x.q[tt * K + k] * cb[n * K + k];
    for (const col of x.cols) outl += x.values[tt * K + col] * cb[n * K + col];
    return Math.fround(h.scb![n] / 127) * (x.scale[tt] * acc + outl);
  };
  const g = product(hosts[0]);
  return hosts.length === 2 ? g / (1 + Math.exp(-g)) * product(hosts[1]) : g + (prior ?? 0);
}

/**
 * Each workgroup's Σ out² of its rows (rowsPerGroup of them) per token: row `from` of `got` [·, N] against row
 * `to` of `squares` [·, stride], for each [from, to] of `rows`.
 */
async function assertSquares(
  gpu: Awaited<ReturnType<typeof testGpu>>,
  squares: Tensor,
  got: Float32Array,
  shape: { N: number; rowsPerGroup: number; stride: number },
  rows: [number, number][],
) {
  const { N, rowsPerGroup, stride } = shape;
  const parts = Math.ceil(N / rowsPerGroup);
  const sq = await gpu.readF32(squares);
  const expected: number[] = [], written: number[] = [];
  for (const [from, to] of rows) {
    for (let part = 0; part < parts; part++) {
      let ss = 0;
      for (let n = part * rowsPerGroup; n < Math.min(N, (part + 1) * rowsPerGroup); n++) {
        ss += got[from * N + n] ** 2;
      }
      expected.push(ss);
      written.push(sq[to * stride + part]);
    }
  }
  assertClose(written, expected, 0, 1e-5);
}

interface Case {
  T: number;
  K: number; // K % 16 != 0 takes the kernel's word-load path
  N: number;
  c: Dp4aConfig;
  glu: boolean; // gate·up: out = silu(x·Wgᵀ)·(x·Wuᵀ)
  accumulate: boolean;
  outliers: boolean;
  /** Outlier columns besides the three every `outliers` case has, several a lane. */
  manyOutliers?: number;
}

Deno.test("matvec_dp4a computes LLM.int8's product (and silu(gate)·up) on odd shapes", async (t) => {
  const gpu = await testGpu();
  const cases: Case[] = [
    { T: 1, K: 1040, N: 301, c: { R: 4, LANES: 8, U: 2 }, glu: false, accumulate: true, outliers: true },
    { T: 3, K: 260, N: 45, c: { R: 2, LANES: 16, U: 1 }, glu: false, accumulate: false, outliers: true },
    { T: 8, K: 208, N: 77, c: { R: 4, LANES: 4, U: 2 }, glu: false, accumulate: true, outliers: true },
    { T: 5, K: 196, N: 37, c: { R: 1, LANES: 32, U: 2 }, glu: false, accumulate: false, outliers: false },
    { T: 8, K: 1040, N: 53, c: { R: 4, LANES: 8, U: 2 }, glu: true, accumulate: false, outliers: true },
    { T: 2, K: 260, N: 29, c: { R: 2, LANES: 16, U: 2 }, glu: true, accumulate: false, outliers: true },
    { T: 7, K: 2064, N: 19, c: { R: 2, LANES: 32, U: 1 }, glu: false, accumulate: true, outliers: true },
    { T: 6, K: 1552, N: 41, c: { R: 4, LANES: 16, U: 4 }, glu: true, accumulate: false, outliers: true },
    { T: 4, K: 2068, N: 23, c: { R: 1, LANES: 8, U: 4 }, glu: false, accumulate: true, outliers: false },
    // The workgroup's halves on half the tokens each: even and odd T (the second half one token short),
    // gate·up, Σout², K in parts with many outlier columns.
    {
      T: 8,
      K: 1040,
      N: 53,
      c: { R: 4, LANES: 8, U: 2, split: 2 },
      glu: true,
      accumulate: false,
      outliers: true,
    },
    {
      T: 7,
      K: 2064,
      N: 19,
      c: { R: 2, LANES: 16, U: 1, split: 2 },
      glu: false,
      accumulate: true,
      outliers: true,
    },
    {
      T: 3,
      K: 260,
      N: 45,
      c: { R: 1, LANES: 4, U: 4, split: 2 },
      glu: false,
      accumulate: false,
      outliers: true,
    },
    {
      T: 5,
      K: 776,
      N: 47,
      c: { R: 1, LANES: 16, U: 2, phases: 4, split: 2 },
      glu: false,
      accumulate: true,
      outliers: true,
      manyOutliers: 17,
    },
    // The model's 8-row wqkv and w2 tilings (dp4aConfigFor).
    {
      T: 8,
      K: 1552,
      N: 67,
      c: { R: 4, LANES: 16, U: 4, split: 2 },
      glu: false,
      accumulate: false,
      outliers: true,
    },
    {
      T: 8,
      K: 2064,
      N: 43,
      c: { R: 2, LANES: 16, U: 4, phases: 1, split: 2 },
      glu: false,
      accumulate: true,
      outliers: true,
    },
    // The CPU adapters' tilings.
    { T: 8, K: 260, N: 45, c: dp4aCpuConfig(false), glu: false, accumulate: true, outliers: true },
    { T: 5, K: 196, N: 37, c: dp4aCpuConfig(true), glu: true, accumulate: false, outliers: true },
    // Many outlier columns (3 + manyOutliers), several a lane: 41 over 4 lanes, 59 over 8 (gate·up), 20 over
    // 16. The first two with K in parts (their columns fall in several), as w2 takes it.
    {
      T: 8,
      K: 1040,
      N: 61,
      c: { R: 4, LANES: 4, U: 2, phases: 4 },
      glu: false,
      accumulate: true,
      outliers: true,
      manyOutliers: 38,
    },
    {
      T: 2,
      K: 520,
      N: 33,
      c: { R: 2, LANES: 8, U: 1, phases: 2 },
      glu: true,
      accumulate: false,
      outliers: true,
      manyOutliers: 56,
    },
    {
      T: 5,
      K: 776,
      N: 47,
      c: { R: 1, LANES: 16, U: 2 },
      glu: false,
      accumulate: false,
      outliers: true,
      manyOutliers: 17,
    },
  ];
  for (const { T, K, N, c, glu, accumulate, outliers, manyOutliers = 0 } of cases) {
    const parts = (c.phases ? ` P${c.phases}` : "") + (c.split ? ` S${c.split}` : "");
    const name = `T=${T} K=${K} N=${N} R${c.R} L${c.LANES} U${c.U}${parts}${glu ? " gate·up" : ""}`;
    await t.step(name, async () => {
      const seed = T * 131 + K * 7 + N * 3 + c.LANES;
      const xs = randomF32(T * K, seed, -2.5, 2.5);
      if (outliers) {
        for (const [row, col] of [[0, 5], [T - 1, 5], [Math.min(1, T - 1), K - 3], [T - 1, 64]]) {
          xs[row * K + col] = row % 2 ? -7.5 : 9.25;
        }
        // Columns 11 apart (coprime with these K, none of the three above), each large in one row.
        for (let j = 0; j < manyOutliers; j++) {
          xs[(j % T) * K + ((7 + 11 * j) % K)] = j % 2 ? -(6.5 + (j % 3)) : 7 + j % 5;
        }
      }
      const hosts = glu ? [hostInt8(N, K, false, seed + 1), hostInt8(N, K, false, seed + 2)] : [
        hostInt8(N, K, false, seed + 1),
      ];
      const ws = hosts.map((h, i) => uploadLinear(gpu, `w${i}`, h));
      const x = gpu.uploadTensor("x", "f32", [T, K], xs);
      const prior = randomF32(T * N, seed + 4);
      const out = gpu.uploadTensor("out", "f32", [T, N], prior);
      const scratch = createLlmInt8RowsScratch(gpu, "rows", 8, K);
      // Without gate·up, each workgroup also leaves Σ out² of its rows (R·256/LANES of them) per token.
      const rowsPerGroup = (c.R * 256) / ((c.split ?? 1) * c.LANES);
      const stride = Math.ceil(N / rowsPerGroup) + 2;
      const squares = glu ? undefined : gpu.uploadTensor("sq", "f32", [8, stride], randomF32(8 * stride, 9));
      const r = gpu.recorder("test");
      const a = llmInt8Rows(r, x, scratch);
      const sums = matvecLlmInt8(r, a, ws[0], out, {
        accumulate,
        up: glu ? ws[1] : undefined,
        config: c,
        squares,
      });
      r.submit();

      // The product from the GPU's own int8 rows (checked by llm_int8_rows_test): exact integer sums, the
      // outlier columns in f32 from x.
      const list = await gpu.readU32(scratch.outliers);
      const cols = [...list.subarray(1, 1 + list[0])];
      assert.equal(cols.length > 0, outliers, "the case has the outlier columns it means to");
      if (manyOutliers) assert.equal(cols.length, 3 + manyOutliers, "outlier columns");
      const rowsX: Int8Rows = {
        q: new Int8Array(await gpu.readBytes(scratch.q)).subarray(0, T * K),
        scale: (await gpu.readF32(scratch.xs)).subarray(0, T),
        cols,
        values: xs,
      };
      const want = new Float32Array(T * N);
      for (let tt = 0; tt < T; tt++) {
        for (let n = 0; n < N; n++) {
          want[tt * N + n] = expectedOutput(hosts, K, rowsX, tt, n, accumulate ? prior[tt * N + n] : 0);
        }
      }
      const got = await gpu.readF32(out);
      assertNormalisedError(got, want, tolerance.matmul.nerr);
      if (squares) {
        assert.deepEqual(sums, { squares, parts: Math.ceil(N / rowsPerGroup) });
        const rowsOf = Array.from({ length: T }, (_, tt): [number, number] => [tt, tt]);
        await assertSquares(gpu, squares, got, { N, rowsPerGroup, stride }, rowsOf);
        squares.buffer.destroy();
      } else {
        assert.equal(sums, null);
      }
      destroyLlmInt8RowsScratch(scratch);
      for (const w of ws) if (w.kind === "int8") { for (const b of [w.weight, w.scale]) b.buffer.destroy(); }
      for (const b of [x, out]) b.buffer.destroy();
    });
  }
});

/**
 * Group g's part of `joint`, quantized by a pass that took several groups, against a rows pass of that group's
 * own on its rows x: outlier list, int8 rows, scales and (normed) rows as multiplied, bit for bit. Returns the
 * group's count of outlier columns.
 */
async function assertQuantizedAsAlone(
  gpu: Awaited<ReturnType<typeof testGpu>>,
  joint: PairedRowsScratch,
  g: number,
  x: Tensor,
  opts: LlmInt8RowsOptions,
): Promise<number> {
  const [T, K] = x.shape;
  const alone = createLlmInt8RowsScratch(gpu, "alone", T, K);
  const r = gpu.recorder("test.alone");
  llmInt8Rows(r, x, alone, opts);
  r.submit();
  const view = joint.groups[g];
  const list = await gpu.readU32(view.outliers), aloneList = await gpu.readU32(alone.outliers);
  assert.deepEqual(
    list.subarray(0, 1 + list[0]),
    aloneList.subarray(0, 1 + aloneList[0]),
    `group ${g}'s list`,
  );
  const q = new Int8Array(await gpu.readBytes(view.q)).subarray(0, T * K);
  assert.deepEqual(q, new Int8Array(await gpu.readBytes(alone.q)), `group ${g}'s int8 rows`);
  assert.deepEqual(
    (await gpu.readF32(view.xs)).subarray(0, T),
    await gpu.readF32(alone.xs),
    `group ${g}'s scales`,
  );
  if (opts.norm) {
    const v = (await gpu.readF32(view.values)).subarray(0, T * K);
    assert.deepEqual(v, await gpu.readF32(alone.values), `group ${g}'s rows as multiplied`);
  }
  destroyLlmInt8RowsScratch(alone);
  return aloneList[0];
}

Deno.test("matvec_dp4a multiplies two row groups quantized apart in one pass, each with its own scales and outliers", async (t) => {
  const gpu = await testGpu();
  interface PairCase {
    rows: [number, number];
    K: number; // a multiple of 32 (of 64 with a first group of odd rows): the second group's rows bindable
    N: number;
    c?: Dp4aConfig; // R, LANES, U, phases (the halves are the groups); default: the model's choice
    glu: boolean;
    accumulate: boolean;
    norm: boolean; // the rows RMSNorm-ed by the rows pass (values in the scratch, not x)
    /** Outlier columns each group has besides its two (its own, 13 apart), several a lane. */
    manyOutliers?: number;
    /** Both groups quantized by one rows pass (`llmInt8RowsGroups`) instead of a pass each. */
    onePass?: boolean;
  }
  const cases: PairCase[] = [
    { rows: [8, 5], K: 1056, N: 75, c: { R: 1, LANES: 8, U: 4 }, glu: false, accumulate: true, norm: false },
    { rows: [8, 6], K: 544, N: 21, glu: true, accumulate: false, norm: true },
    { rows: [8, 8], K: 2080, N: 37, c: { R: 4, LANES: 8, U: 4 }, glu: true, accumulate: false, norm: true },
    { rows: [8, 1], K: 544, N: 29, c: { R: 2, LANES: 16, U: 1 }, glu: false, accumulate: false, norm: true },
    {
      rows: [8, 7],
      K: 1088,
      N: 51,
      c: { R: 1, LANES: 4, U: 2, phases: 4 },
      glu: false,
      accumulate: true,
      norm: false,
      manyOutliers: 23,
    },
    // Groups of fewer than 8 rows (a step of 9–15 rows in two even groups): the second half's rows, scales,
    // values and Σout² rows where the first group's end.
    { rows: [5, 5], K: 1088, N: 43, c: { R: 1, LANES: 8, U: 4 }, glu: false, accumulate: true, norm: true },
    { rows: [6, 5], K: 576, N: 27, glu: true, accumulate: false, norm: true },
    {
      rows: [7, 6],
      K: 1152,
      N: 33,
      c: { R: 2, LANES: 16, U: 2, phases: 2 },
      glu: false,
      accumulate: false,
      norm: false,
      manyOutliers: 9,
    },
    { rows: [3, 2], K: 640, N: 19, c: { R: 4, LANES: 4, U: 1 }, glu: false, accumulate: true, norm: true },
  ];
  // The same cases with both groups quantized in one pass.
  cases.push(...cases.map((c) => ({ ...c, onePass: true })));
  for (const { rows, K, N, c, glu, accumulate, norm, manyOutliers = 0, onePass = false } of cases) {
    const T = rows[0] + rows[1];
    const tiling = c ? ` R${c.R} L${c.LANES} U${c.U}${c.phases ? ` P${c.phases}` : ""}` : "";
    const how = `${glu ? " gate·up" : ""}${norm ? " normed" : ""}${onePass ? ", one rows pass" : ""}`;
    await t.step(
      `${rows[0]} + ${rows[1]} rows, K=${K} N=${N}${tiling}${how}`,
      async () => {
        const seed = T * 17 + K + N;
        const xs = randomF32(T * K, seed, -2.5, 2.5);
        // Each group's own outlier columns (none shared), large in one of its rows each.
        for (let g = 0; g < 2; g++) {
          const first = g * rows[0];
          for (let j = 0; j < 2 + manyOutliers; j++) {
            const col = (3 + 13 * j + 7 * g) % K;
            xs[(first + (j % rows[g])) * K + col] = j % 2 ? -(16 + g) : 18.5 + g; // still ≥ 6 when normed
          }
        }
        const hosts = glu ? [hostInt8(N, K, false, seed + 1), hostInt8(N, K, false, seed + 2)] : [
          hostInt8(N, K, false, seed + 1),
        ];
        const ws = hosts.map((h, i) => uploadLinear(gpu, `w${i}`, h));
        const x = gpu.uploadTensor("x", "f32", [T, K], xs);
        const gnorm = gpu.uploadTensor("g", "f32", [K], randomF32(K, seed + 5, 0.9, 1.1));
        const prior = randomF32(T * N, seed + 4);
        const out = gpu.uploadTensor("out", "f32", [T, N], prior);
        const joint = createPairedRowsScratch(gpu, "pair", K);
        // Without gate·up, each workgroup also leaves Σ out² of its rows per token: 16 rows, a group's 8 each.
        const rowsPerGroup = c ? (c.R * 256) / (2 * c.LANES) : 0;
        const stride = Math.ceil(N / Math.max(1, rowsPerGroup)) + 2;
        const squares = glu
          ? undefined
          : gpu.uploadTensor("sq", "f32", [16, stride], randomF32(16 * stride, 9));
        const r = gpu.recorder("test");
        const opts = norm ? { norm: { weight: gnorm, eps: 1e-6 } } : {};
        const paired = onePass ? llmInt8RowsGroups(r, x, rows, joint, opts)[0] : pairRows(
          ...[0, 1].map((g) => llmInt8Rows(r, rowsView(x, g * rows[0], rows[g]), joint.groups[g], opts)) as [
            QuantizedRows,
            QuantizedRows,
          ],
          joint,
          x,
        );
        const sums = matvecLlmInt8(r, paired, ws[0], out, {
          accumulate,
          up: glu ? ws[1] : undefined,
          config: c,
          squares,
        });
        r.submit();

        // Each group's product from its own int8 rows, scales and outlier columns.
        const want = new Float32Array(T * N);
        for (let g = 0; g < 2; g++) {
          const view = joint.groups[g];
          const list = await gpu.readU32(view.outliers);
          const cols = [...list.subarray(1, 1 + list[0])];
          assert.equal(cols.length, Math.min(2 + manyOutliers, K), `group ${g}'s outlier columns`);
          const rowsX: Int8Rows = {
            q: new Int8Array(await gpu.readBytes(view.q)).subarray(0, rows[g] * K),
            scale: await gpu.readF32(view.xs),
            cols,
            values: norm ? await gpu.readF32(view.values) : xs.subarray(g * rows[0] * K),
          };
          // One pass for both groups quantizes each as its own pass does: bit for bit.
          if (onePass) await assertQuantizedAsAlone(gpu, joint, g, rowsView(x, g * rows[0], rows[g]), opts);
          for (let tt = 0; tt < rows[g]; tt++) {
            const row = g * rows[0] + tt;
            for (let n = 0; n < N; n++) {
              want[row * N + n] = expectedOutput(hosts, K, rowsX, tt, n, accumulate ? prior[row * N + n] : 0);
            }
          }
        }
        const got = await gpu.readF32(out);
        assertNormalisedError(got, want, tolerance.matmul.nerr);
        if (squares) {
          assert.deepEqual(sums, { squares, parts: Math.ceil(N / rowsPerGroup) });
          // A group's rows from row 8g of squares.
          const rowsOf = Array.from(
            { length: T },
            (_, row): [number, number] => row < rows[0] ? [row, row] : [row, 8 + row - rows[0]],
          );
          await assertSquares(gpu, squares, got, { N, rowsPerGroup, stride }, rowsOf);
          squares.buffer.destroy();
        }
        destroyPairedRowsScratch(joint);
        for (const w of ws) {
          if (w.kind === "int8") {
            for (const b of [w.weight, w.scale]) b.buffer.destroy();
          }
        }
        for (const b of [x, out, gnorm]) b.buffer.destroy();
      },
    );
  }
});

Deno.test("one LLM.int8 rows pass quantizes two or three row groups as a pass of each group's own does", async (t) => {
  // Bit for bit: each group's outlier list, int8 rows, scales and rows as multiplied; the norm from Σx²
  // parts too, the third group's parts as many as its own product left (another tiling than the pair's).
  const gpu = await testGpu();
  const cases: { rows: number[]; K: number; mode: "plain" | "norm" | "sums" }[] = [
    { rows: [8, 8, 5], K: 1088, mode: "sums" },
    { rows: [8, 8, 8], K: 576, mode: "norm" },
    { rows: [8, 8, 1], K: 640, mode: "plain" },
    { rows: [6, 5], K: 1152, mode: "sums" },
  ];
  for (const { rows, K, mode } of cases) {
    await t.step(`${rows.join(" + ")} rows, K=${K}, ${mode}`, async () => {
      const T = rows.reduce((a, b) => a + b, 0);
      const G = rows.length;
      const seed = 7 * T + K;
      const xs = randomF32(T * K, seed, -2.5, 2.5);
      // Outlier columns of each group's own (≥ 6 when normed too).
      rows.forEach((n, g) => {
        const from = rows.slice(0, g).reduce((a, b) => a + b, 0);
        for (let j = 0; j < 3 + g; j++) {
          xs[(from + (j % n)) * K + ((5 + 11 * j + 3 * g) % K)] = j % 2 ? -19 : 21;
        }
      });
      const x = gpu.uploadTensor("x", "f32", [T, K], xs);
      const gnorm = gpu.uploadTensor("g", "f32", [K], randomF32(K, seed + 1, 0.9, 1.1));
      // Σx² parts: each row's Σx² cut into parts (the pair's rows into 5, the third group's into 3), rows 8g….
      const stride = 8; // a group's 8 rows: 256 bytes, so each group's own pass can bind them
      const parts = rows.map((_, g) => g < 2 ? 5 : 3);
      const sq = new Float32Array(8 * G * stride).fill(Number.NaN);
      rows.forEach((n, g) => {
        const from = rows.slice(0, g).reduce((a, b) => a + b, 0);
        for (let tt = 0; tt < n; tt++) {
          let ss = 0;
          for (let k = 0; k < K; k++) ss += xs[(from + tt) * K + k] ** 2;
          for (let i = 0; i < parts[g]; i++) sq[(8 * g + tt) * stride + i] = ss / parts[g];
        }
      });
      const squares = gpu.uploadTensor("sq", "f32", [8 * G, stride], sq);
      const norm = mode === "plain" ? undefined : { weight: gnorm, eps: 1e-6 };
      const joint = createPairedRowsScratch(gpu, "groups", K, G as 2 | 3);
      const r = gpu.recorder("test");
      const out = llmInt8RowsGroups(r, x, rows, joint, {
        norm,
        sums: mode === "sums" ? { squares, parts } : undefined,
      });
      r.submit();
      assert.equal(out.length, G === 3 ? 2 : 1);
      assert.equal(out[0].rows, rows[0] + rows[1]);
      for (let g = 0; g < G; g++) {
        const from = rows.slice(0, g).reduce((a, b) => a + b, 0);
        const sums = mode === "sums" ? { squares: rowsView(squares, 8 * g, 8), parts: parts[g] } : undefined;
        const columns = await assertQuantizedAsAlone(gpu, joint, g, rowsView(x, from, rows[g]), {
          norm: norm && { ...norm, sums },
        });
        assert.ok(columns >= 3 + g, `group ${g} has its outlier columns`);
      }
      // The third group's rows: its part of the scratch (or of x, not normed), as a product takes them.
      if (G === 3) {
        assert.equal(out[1].rows, rows[2]);
        assert.equal(out[1].q.byteOffset, joint.groups[2].q.byteOffset);
        if (!norm) assert.equal(out[1].values.byteOffset, 16 * K * 4);
      }
      destroyPairedRowsScratch(joint);
      for (const b of [x, gnorm, squares]) b.buffer.destroy();
    });
  }
});

Deno.test("dp4aTokensPerRound: the fewest reduction rounds, at most two outputs a thread with Σout²", () => {
  const nr = (R: number, tokens: number, rowsPerGroup: number, squares = false, split = 1) =>
    dp4aTokensPerRound({ R, tokens, split, rowsPerGroup, squares });
  // One token's slots: R ≤ 2 fit 8 tokens a round, R = 4 (or gate·up's 2 + 2) 4.
  assert.deepEqual([1, 2, 3, 4, 5, 8].map((T) => nr(2, T, 32)), [2, 2, 4, 4, 8, 8]);
  assert.deepEqual([1, 2, 3, 4, 5, 8].map((T) => nr(4, T, 64)), [2, 2, 4, 4, 4, 4]);
  // With Σout²: NR · halves · rows a workgroup ≤ 512 (wo at 8 rows: R1 L16, 16 rows a workgroup).
  assert.equal(nr(1, 8, 16, true), 8);
  assert.equal(nr(2, 8, 128, true), 4); // 8 · 128 > 512
  assert.equal(nr(4, 8, 256, true), 2); // 4 · 256 > 512
  assert.equal(nr(4, 8, 256, false), 4);
  assert.equal(nr(1, 8, 16, true, 2), 8); // paired w2: R1 L8 on halves
  assert.equal(nr(2, 8, 64, true, 2), 4);
});

Deno.test("matvec_dp4a rejects a gate·up product it cannot take", async () => {
  const gpu = await testGpu();
  const K = 64, N = 8;
  const w = uploadLinear(gpu, "w", hostInt8(N, K, false, 1));
  const scratch = createLlmInt8RowsScratch(gpu, "rows", 2, K);
  const x = gpu.uploadTensor("x", "f32", [2, K], randomF32(2 * K, 2));
  const out = gpu.createTensor("out", "f32", [2, N]);
  const r = gpu.recorder("test");
  const a = llmInt8Rows(r, x, scratch);
  assert.throws(() => matvecLlmInt8(r, a, w, out, { up: w, config: { R: 1, LANES: 8, U: 1 } }), /R ≥ 2/);
  assert.throws(() => matvecLlmInt8(r, a, w, out, { up: w, accumulate: true }), /no accumulate/);
  const wide = gpu.createTensor("wide", "f32", [2, N + 1]);
  assert.throws(() => matvecLlmInt8(r, a, w, wide), /out/);
  r.submit();
  destroyLlmInt8RowsScratch(scratch);
  for (const b of [x, out, wide]) b.buffer.destroy();
  if (w.kind === "int8") { for (const b of [w.weight, w.scale]) b.buffer.destroy(); }
});
