import assert from "node:assert/strict";
import { uploadLinear } from "../../src/ops/linear.ts";
import {
  createLlmInt8RowsScratch,
  destroyLlmInt8RowsScratch,
  type Dp4aConfig,
  dp4aCpuConfig,
  llmInt8Rows,
  matvecLlmInt8,
} from "../../src/ops/matvec_dp4a.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

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
      const q = new Int8Array(await gpu.readBytes(scratch.q)).subarray(0, T * K);
      const scale = (await gpu.readF32(scratch.xs)).subarray(0, T);
      const product = (h: (typeof hosts)[number], tt: number, n: number) => {
        const cb = h.weight as Int8Array;
        let acc = 0, outl = 0;
        for (let k = 0; k < K; k++) acc += q[tt * K + k] * cb[n * K + k];
        for (const col of cols) outl += xs[tt * K + col] * cb[n * K + col];
        return Math.fround(h.scb![n] / 127) * (scale[tt] * acc + outl);
      };
      const want = new Float32Array(T * N);
      for (let tt = 0; tt < T; tt++) {
        for (let n = 0; n < N; n++) {
          const g = product(hosts[0], tt, n);
          want[tt * N + n] = glu
            ? g / (1 + Math.exp(-g)) * product(hosts[1], tt, n)
            : g + (accumulate ? prior[tt * N + n] : 0);
        }
      }
      const got = await gpu.readF32(out);
      assertNormalisedError(got, want, tolerance.matmul.nerr);
      if (squares) {
        const parts = Math.ceil(N / rowsPerGroup);
        assert.deepEqual(sums, { squares, parts });
        const sq = await gpu.readF32(squares);
        const expected: number[] = [], written: number[] = [];
        for (let tt = 0; tt < T; tt++) {
          for (let part = 0; part < parts; part++) {
            let ss = 0;
            for (let n = part * rowsPerGroup; n < Math.min(N, (part + 1) * rowsPerGroup); n++) {
              ss += got[tt * N + n] ** 2;
            }
            expected.push(ss);
            written.push(sq[tt * stride + part]);
          }
        }
        assertClose(written, expected, 0, 1e-5);
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
