import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import { type HostLinear, tileGrid, uploadLinear } from "../../src/ops/linear.ts";
import {
  checkDp4aTiling,
  dp4aPartsWords,
  dp4aSplitCount,
  dp4aSplits,
  type Dp4aTiling,
  dp4aTiling,
  dp4aTilingName,
  dp4aTilings,
  type Int8LinearWeights,
  linearDp4a,
  linearLlmInt8,
  LlmInt8Scratch,
  LlmInt8ScratchPool,
  type LlmInt8Views,
  paddedK,
  recordLinearLlmInt8,
} from "../../src/ops/llm_int8.ts";
import { llmInt8ProductRef, llmInt8QuantizeRef } from "../../src/ref/llm_int8.ts";
import { randomF32, randomI8 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";

const threshold = 6;

function uploadInt8(gpu: Gpu, host: HostLinear): Int8LinearWeights {
  const w = uploadLinear(gpu, "w", host);
  if (w.kind !== "int8") throw new Error("int8 weights expected");
  return w;
}
// The GEMM against step 4 computed from the GPU's own q, sca and outlier list: f32 roundings only, so
// |got − want| ≤ rtol·(sum of the magnitudes of the terms) (cancellation makes |want| itself a poor scale).
const gemmRtol = 1e-5;
// Where WGSL's 127/sca (within 2.5 ulp) may round x·127/sca to the other integer: within this of a .5 tie.
const tieWindow = 1e-3;

type Outliers = "some" | "none" | "row";

/**
 * x in ±3 (so the row max stays below θ) with, for "some", outliers in a few rows of a few columns —
 * exactly ±θ counts, just below θ does not; for "row", row 1 is all outliers (so every column is one).
 */
function activations(T: number, K: number, kind: Outliers, seed: number): Float32Array {
  const x = randomF32(T * K, seed, -3, 3);
  const set = (t: number, c: number, v: number) => {
    if (t < T) x[t * K + c] = v;
  };
  if (kind === "some") {
    set(0, 1, 6); // exactly θ
    set(T - 1, 1, -7.5);
    set(2, K - 1, -6);
    set(T - 1, Math.floor(K / 2), 41.25);
    set(0, 9, Math.fround(5.9999995)); // below θ: no outlier, and row 0's max
    set(T - 1, 9, -5.75);
    // Row 3's max is 4, so 127/sca = 31.75 exactly on any GPU (a power-of-two divisor) and ±2 lands on
    // the exact ties ±63.5: half-to-even gives ±64 (half-up would give −63).
    set(3, 20, 4);
    set(3, 21, -2);
    set(3, 22, 2);
  } else if (kind === "row") {
    for (let c = 0; c < K; c++) set(Math.min(1, T - 1), c, (c % 2 ? -1 : 1) * (6 + (c % 7)));
  }
  return x;
}

/** Reads the four scratch outputs of a call for T tokens × K inputs (q without its pad columns). */
async function readScratch(gpu: Gpu, s: LlmInt8Views, T: number, K: number) {
  const qPadded = new Int8Array(await gpu.readBytes(s.q));
  const Kp = paddedK(K);
  const q = new Int8Array(T * K);
  for (let t = 0; t < T; t++) {
    q.set(qPadded.subarray(t * Kp, t * Kp + K), t * K);
    for (let c = K; c < Kp; c++) {
      assert.equal(qPadded[t * Kp + c], 0, `q pad column ${c} of row ${t}`);
    }
  }
  const list = await gpu.readU32(s.outliers);
  return {
    flags: await gpu.readU32(s.flags),
    outliers: Array.from(list.subarray(1, 1 + Math.min(list[0], K))),
    count: list[0],
    sca: await gpu.readF32(s.sca),
    q,
  };
}

/** Sum of the magnitudes of the terms of out[t, n] (the scale of its f32 rounding error). */
function magnitudes(
  x: Float32Array,
  T: number,
  q: Int8Array,
  sca: Float32Array,
  outliers: readonly number[],
  w: HostLinear,
  prior: Float32Array | null,
): Float64Array {
  const N = w.outFeatures, K = w.inFeatures, cb = w.weight;
  const mag = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let acc = 0, o = 0;
      for (let k = 0; k < K; k++) acc += q[t * K + k] * cb[n * K + k];
      for (const c of outliers) o += Math.abs(x[t * K + c] * cb[n * K + c]);
      mag[t * N + n] = (w.scb![n] / 127) * (Math.abs(acc) * sca[t] / 127 + o) + Math.abs(w.bias?.[n] ?? 0) +
        Math.abs(prior?.[t * N + n] ?? 0);
    }
  }
  return mag;
}

/** |got − want| ≤ rtol·mag + slack, element by element; reports the worst. */
function assertWithin(
  got: Float32Array,
  want: Float32Array,
  mag: Float64Array,
  rtol: number,
  slack: Float64Array | null,
  N: number,
  what: string,
): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const bound = rtol * mag[i] + (slack ? slack[i] : 0);
    if (!(Math.abs(got[i] - want[i]) <= bound)) {
      throw new Error(
        `${what}: out[${Math.floor(i / N)}, ${i % N}] = ${got[i]}, expected ${want[i]} ± ${bound}`,
      );
    }
  }
}

/**
 * x·127/sca within `tieWindow` of a .5 tie, where the GPU's 127/sca (not always correctly rounded) may
 * round x·127/sca to the other integer. A power-of-two sca makes 127/sca exact everywhere: no leeway.
 */
function nearTie(x: number, sca: number): boolean {
  if (sca === 0 || Number.isInteger(Math.log2(sca))) return false;
  const v = Math.abs(x) * 127 / sca;
  return Math.abs(v - Math.floor(v) - 0.5) < tieWindow;
}

interface Case {
  T: number;
  N: number;
  K: number;
  outliers: Outliers;
  bias: boolean;
  accumulate: boolean;
  /** Outlier columns copied compactly for the GEMM (default 512); a small cap sends the rest one by one. */
  cap?: number;
}

/**
 * One call of all passes on fresh inputs, checked step by step: flags and the outlier list exactly, sca
 * exactly, q exactly except at rounding ties, the GEMM tightly against step 4 from the GPU's own q/sca/list,
 * and the output against the CPU reference end to end (looser only by the tie-rounded q).
 */
async function checkCase(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const { T, N, K } = c;
  const what = `T=${T} N=${N} K=${K} ${c.outliers} bias=${c.bias} accumulate=${c.accumulate} cap=${c.cap}`;
  const host = hostInt8(N, K, c.bias, seed);
  const xs = activations(T, K, c.outliers, seed + 3);
  const prior = c.accumulate ? randomF32(T * N, seed + 4) : null;
  const w = uploadInt8(gpu, host);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const out = prior ? gpu.uploadTensor("out", "f32", [T, N], prior) : gpu.createTensor("out", "f32", [T, N]);
  const { scratch } = linearLlmInt8(gpu, x, w, { out, accumulate: c.accumulate, cap: c.cap });
  const got = await readScratch(gpu, scratch.views(T, K, N), T, K);
  const cpu = llmInt8QuantizeRef(xs, T, K, threshold);

  assert.deepEqual(Array.from(got.flags), Array.from(cpu.flags), `${what}: flags`);
  assert.equal(got.count, cpu.outliers.length, `${what}: outlier count`);
  assert.deepEqual(got.outliers, cpu.outliers, `${what}: outlier list`);
  if (c.outliers === "none") assert.equal(got.count, 0);
  if (c.outliers === "row") assert.equal(got.count, K);
  assert.deepEqual(Array.from(got.sca), Array.from(cpu.sca), `${what}: sca`);
  // q: exact, except one step off where x·127/sca is a near tie; slack[t, n] is what those steps can move
  // out[t, n] by in the end-to-end comparison.
  const slack = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < K; k++) {
      const i = t * K + k, d = got.q[i] - cpu.q[i];
      if (d === 0) continue;
      if (!(Math.abs(d) === 1 && nearTie(xs[i], cpu.sca[t]))) {
        throw new Error(`${what}: q[${t}, ${k}] = ${got.q[i]}, expected ${cpu.q[i]} (x = ${xs[i]})`);
      }
      for (let n = 0; n < N; n++) {
        slack[t * N + n] += Math.abs(host.weight[n * K + k]) * (cpu.sca[t] / 127) * (host.scb![n] / 127);
      }
    }
  }

  const actual = await gpu.readF32(out);
  const fromGpu = llmInt8ProductRef(xs, T, got.q, got.sca, got.outliers, host, prior);
  const mag = magnitudes(xs, T, got.q, got.sca, got.outliers, host, prior);
  assertWithin(actual, fromGpu, mag, gemmRtol, null, N, `${what}: GEMM`);
  const reference = llmInt8ProductRef(xs, T, cpu.q, cpu.sca, cpu.outliers, host, prior);
  assertWithin(actual, reference, mag, gemmRtol, slack, N, `${what}: end to end`);

  scratch.destroy();
  for (const t of [w.weight, w.scale, w.bias, x, out]) t?.buffer.destroy();
}

Deno.test("LLM.int8 follows bitsandbytes step by step on odd shapes, with and without outliers", async () => {
  const gpu = await testGpu();
  const cases: Case[] = [
    { T: 37, N: 45, K: 68, outliers: "some", bias: true, accumulate: false },
    { T: 130, N: 133, K: 260, outliers: "some", bias: false, accumulate: true },
    { T: 130, N: 45, K: 144, outliers: "none", bias: true, accumulate: true },
    { T: 37, N: 133, K: 260, outliers: "row", bias: false, accumulate: false },
    { T: 37, N: 133, K: 260, outliers: "row", bias: true, accumulate: true, cap: 8 }, // 252 columns past it
    { T: 70, N: 67, K: 144, outliers: "some", bias: false, accumulate: true, cap: 4 },
    { T: 1, N: 45, K: 68, outliers: "some", bias: true, accumulate: true },
    { T: 70, N: 67, K: 144, outliers: "some", bias: false, accumulate: false },
  ];
  let seed = 100;
  for (const c of cases) await checkCase(gpu, c, seed++ * 17);
});

Deno.test("linear_dp4a gives the same result with every tiling it supports", async () => {
  const gpu = await testGpu();
  // Tilings alternate between K = 144, weight rows of whole 16-byte words (VEC loads), and K = 68, 17 words
  // a row (word loads) and a partial k step for every BK: one pipeline each, as llvmpipe compiles a
  // tiling in seconds (the first test already ran the default tilings with both). T = 260 fills every row
  // group of the 256-row tile.
  for (const [parity, [T, N, K]] of [[260, 133, 144], [37, 45, 68]].entries()) {
    const seed = T + N + K;
    const host = hostInt8(N, K, true, seed);
    const xs = activations(T, K, "some", seed + 3);
    const prior = randomF32(T * N, seed + 4);
    const w = uploadInt8(gpu, host);
    const x = gpu.uploadTensor("x", "f32", [T, K], xs);
    const out = gpu.createTensor("out", "f32", [T, N]);
    const scratch = new LlmInt8Scratch(gpu, "s", T + 5, K + 8); // bigger than needed: views of its front
    const s = scratch.views(T, K, N);
    const r = gpu.recorder("quantize");
    recordLinearLlmInt8(r, x, w, out, scratch);
    r.submit();
    const got = await readScratch(gpu, s, T, K);
    assert.ok(got.count > 0);
    const want = llmInt8ProductRef(xs, T, got.q, got.sca, got.outliers, host, prior);
    const mag = magnitudes(xs, T, got.q, got.sca, got.outliers, host, prior);
    for (const [i, tiling] of dp4aTilings.entries()) {
      if (i % 2 !== parity) continue;
      gpu.writeTensor(out, prior);
      const r2 = gpu.recorder("gemm");
      linearDp4a(r2, x, s, w, out, { accumulate: true, tiling });
      r2.submit();
      assertWithin(await gpu.readF32(out), want, mag, gemmRtol, null, N, `${dp4aTilingName(tiling)} K=${K}`);
    }
    scratch.destroy();
    for (const t of [w.weight, w.scale, w.bias, x, out]) t?.buffer.destroy();
  }
});

Deno.test("linear_dp4a split K gives the unsplit product bit for bit over parts of garbage", async () => {
  const gpu = await testGpu();
  // Odd shapes, a last split shorter than a step, word loads (K % 16 ≠ 0) and 16-byte loads, outlier
  // columns in the epilogue (cap 512), past the cap (cap 4: one by one) and more than the epilogue takes
  // (the outlier GEMM after the sum), bias and the residual add. The i32 partial sums add exactly, so a
  // split must give the very bits of the unsplit call with the same tiling.
  const cases = [
    { T: 5, N: 45, K: 264, splits: 3, tiling: dp4aTilings[5], outliers: "some" as Outliers, cap: 512 },
    { T: 37, N: 67, K: 1000, splits: 7, tiling: dp4aTilings[0], outliers: "some" as Outliers, cap: 4 },
    { T: 70, N: 133, K: 528, splits: 2, tiling: dp4aTilings[6], outliers: "row" as Outliers, cap: 512 },
  ];
  for (const [i, c] of cases.entries()) {
    const { T, N, K } = c;
    const host = hostInt8(N, K, i !== 1, 40 + i);
    const xs = activations(T, K, c.outliers, 50 + i);
    const prior = randomF32(T * N, 60 + i);
    const w = uploadInt8(gpu, host);
    const x = gpu.uploadTensor("x", "f32", [T, K], xs);
    const out = gpu.createTensor("out", "f32", [T, N]);
    const scratch = new LlmInt8Scratch(gpu, "split", T, K, N, c.cap, 8 * 128 * 256); // forced splits
    assert.ok(scratch.parts, "a scratch made for split K has parts");
    gpu.writeTensor(scratch.parts, new Uint32Array(randomI8(4 * scratch.parts.numel, 70 + i).buffer));
    const run = async (splits: number) => {
      gpu.writeTensor(out, prior);
      const r = gpu.recorder("split");
      recordLinearLlmInt8(r, x, w, out, scratch, { accumulate: true, tiling: c.tiling, splits });
      r.submit();
      return await gpu.readF32(out);
    };
    const whole = await run(1);
    const split = await run(c.splits);
    const what = `T=${T} N=${N} K=${K} ${dp4aTilingName(c.tiling)} in ${c.splits} splits`;
    for (let j = 0; j < whole.length; j++) {
      if (!Object.is(split[j], whole[j])) {
        throw new Error(`${what}: out[${Math.floor(j / N)}, ${j % N}] = ${split[j]}, unsplit ${whole[j]}`);
      }
    }
    // And the unsplit call is LLM.int8's product (from the GPU's own int8 rows).
    const got = await readScratch(gpu, scratch.views(T, K, N), T, K);
    if (c.outliers === "row") assert.ok(got.count > 64, `${what}: the outlier GEMM runs`);
    const want = llmInt8ProductRef(xs, T, got.q, got.sca, got.outliers, host, prior);
    const mag = magnitudes(xs, T, got.q, got.sca, got.outliers, host, prior);
    assertWithin(whole, want, mag, gemmRtol, null, N, what);
    scratch.destroy();
    for (const t of [w.weight, w.scale, w.bias, x, out]) t?.buffer.destroy();
  }
});

Deno.test("rowsReady: a second weight on the same x takes the int8 rows in the scratch, as a full call", async () => {
  const gpu = await testGpu();
  const [T, N, K] = [37, 45, 144];
  const xs = activations(T, K, "some", 81);
  const x = gpu.uploadTensor("x", "f32", [T, K], xs);
  const [w1, w3] = [hostInt8(N, K, false, 82), hostInt8(N, K, true, 83)].map((h) => uploadInt8(gpu, h));
  const scratch = new LlmInt8Scratch(gpu, "ready", T, K, N);
  const [a, b] = [gpu.createTensor("a", "f32", [T, N]), gpu.createTensor("b", "f32", [T, N])];
  const full = gpu.recorder("full");
  recordLinearLlmInt8(full, x, w3, a, scratch);
  const fullSize = full.size;
  full.submit();
  const want = await gpu.readF32(a);
  // Another x in between: the scratch then holds its rows, until w1's call on x makes them again.
  const other = gpu.uploadTensor("other", "f32", [T, K], activations(T, K, "row", 84));
  const r = gpu.recorder("pair");
  recordLinearLlmInt8(r, other, w1, b, scratch);
  recordLinearLlmInt8(r, x, w1, b, scratch);
  const before = r.size;
  recordLinearLlmInt8(r, x, w3, b, scratch, { rowsReady: true });
  assert.equal(r.size - before, fullSize - 3, "no flags, scan or int8 rows again");
  r.submit();
  assert.deepEqual(await gpu.readF32(b), want);
  scratch.destroy();
  for (const t of [x, other, a, b, w1.weight, w1.scale, w3.weight, w3.scale, w3.bias]) t?.buffer.destroy();
});

Deno.test("dp4aSplits splits few tiles within the parts, which hold every split a scratch can ask for", () => {
  const [wide, narrow] = [dp4aTilings[0], dp4aTilings[6]];
  const room = { numel: 1e9 } as Tensor;
  // 32 rows of wo: 48 tiles of 32×128, 96 of 64×64; w1's 256 of 64×64 do not split; 128 rows of w2 (192).
  assert.equal(dp4aSplits(32, 6144, 6144, narrow, room), dp4aSplitCount);
  assert.equal(dp4aSplits(32, 6144, 6144, wide, room), dp4aSplitCount);
  assert.equal(dp4aSplits(128, 6144, 16384, wide, room), dp4aSplitCount);
  assert.equal(dp4aSplits(256, 6144, 16384, wide, room), 1);
  assert.equal(dp4aSplits(32, 16384, 6144, wide, room), 1);
  assert.equal(dp4aSplits(32, 6144, 6144, wide, null), 1);
  assert.equal(dp4aSplits(32, 6144, 6144, wide, { numel: 3 * 96 * 64 * 64 } as Tensor), 3);
  assert.equal(dp4aSplits(32, 6144, 1024, wide, room), 2); // ≥ 8 steps of 64 k a split
  assert.equal(dp4aSplitCount, 4);
  // The language model's products at every row count up to 256 in a scratch of 256 rows.
  const words = dp4aPartsWords(256, 16384, 16384);
  for (let T = 1; T <= 256; T++) {
    for (const [N, K] of [[8192, 6144], [6144, 6144], [16384, 6144], [6144, 16384]]) {
      const c = dp4aTiling(T, N, K);
      const splits = dp4aSplits(T, N, K, c, room);
      const [cols, rows] = tileGrid(c, T, N);
      const need = splits > 1 ? splits * cols * rows * (4 * (c.RH ?? 2) * c.TY) * (4 * c.CW * c.TX) : 0;
      assert.ok(
        need <= words,
        `T=${T} N=${N} K=${K}: ${splits} splits need ${need} words, parts hold ${words}`,
      );
    }
  }
});

Deno.test("LLM.int8 refuses shapes, scratch and tilings it cannot run", async () => {
  const gpu = await testGpu();
  const w = uploadLinear(gpu, "w", hostInt8(8, 30, false, 1));
  const x = gpu.createTensor("x", "f32", [4, 30]);
  const out = gpu.createTensor("out", "f32", [4, 8]);
  const small = new LlmInt8Scratch(gpu, "small", 2, 32);
  assert.throws(() => recordLinearLlmInt8(gpu.recorder("t"), x, w, out, small), /holds 2 tokens × 32 inputs/);
  const scratch = new LlmInt8Scratch(gpu, "s", 4, 32);
  assert.throws(() => recordLinearLlmInt8(gpu.recorder("t"), x, w, out, scratch), /K = 30 is not a multiple/);
  const w32 = uploadLinear(gpu, "w32", hostInt8(8, 32, false, 2));
  const x32 = gpu.createTensor("x32", "f32", [4, 32]);
  assert.throws(() => recordLinearLlmInt8(gpu.recorder("t"), x32, w32, x32, scratch), /must not alias x/);
  assert.throws(
    () => recordLinearLlmInt8(gpu.recorder("t"), x32, w32, out, scratch, { threshold: 0 }),
    /threshold 0 must be > 0/,
  );
  for (const c of dp4aTilings) checkDp4aTiling(c);
  const bad: Dp4aTiling[] = [
    { TX: 16, TY: 16, RH: 4, CW: 2, BK: 64, GM: 8 }, // 48 KiB of workgroup memory
    { TX: 16, TY: 16, CW: 1, BK: 32, GM: 8 }, // 64 weight rows × 2 loads < 256 threads
    { TX: 8, TY: 16, CW: 4 as 2, BK: 32, GM: 8 }, // 16 columns a thread
    { TX: 4, TY: 16, CW: 2, BK: 32, GM: 8 }, // not whole warps
    { TX: 16, TY: 16, CW: 2, BK: 16 as 32, GM: 8 }, // steps of 4 words
  ];
  for (const c of bad) assert.throws(() => checkDp4aTiling(c), /unsupported tiling/);
  small.destroy();
  scratch.destroy();
});

Deno.test("a reused scratch: columns past a smaller count never reach the product; counts 97, 70, 40", async () => {
  // The compact copies are written only up to each call's count; a second call with fewer outliers must
  // mask what the earlier ones left there. Counts 97 and 70 are past the epilogue's 64 columns, so the
  // outlier GEMM (kernels/linear_tiled.wgsl, DYNK) takes them all, 70 in a partial step; the epilogue takes
  // 40 whole while the GEMM's workgroups return.
  const gpu = await testGpu();
  const [T, N, K] = [37, 45, 144];
  const host = hostInt8(N, K, true, 5);
  const w = uploadInt8(gpu, host);
  const out = gpu.createTensor("out", "f32", [T, N]);
  const scratch = new LlmInt8Scratch(gpu, "reused", T, K, N);
  for (const [count, seed] of [[97, 11], [70, 12], [40, 13]]) {
    const xs = randomF32(T * K, seed, -3, 3);
    for (let c = 0; c < count; c++) xs[(c % T) * K + c] = c % 2 ? -9 : 9; // column c: one value ≥ θ
    const x = gpu.uploadTensor("x", "f32", [T, K], xs);
    const r = gpu.recorder("reused");
    recordLinearLlmInt8(r, x, w, out, scratch);
    r.submit();
    const got = await readScratch(gpu, scratch.views(T, K, N), T, K);
    assert.equal(got.count, count);
    const want = llmInt8ProductRef(xs, T, got.q, got.sca, got.outliers, host, null);
    const mag = magnitudes(xs, T, got.q, got.sca, got.outliers, host, null);
    assertWithin(await gpu.readF32(out), want, mag, gemmRtol, null, N, `count ${count}`);
    x.buffer.destroy();
  }
  scratch.destroy();
  for (const b of [w.weight, w.scale, out, ...(w.bias ? [w.bias] : [])]) b.buffer.destroy();
});

Deno.test("LlmInt8ScratchPool: one scratch for every call that fits, regrown in steps of 512 tokens", async () => {
  const gpu = await testGpu();
  const pool = new LlmInt8ScratchPool(gpu, "pool", 68, 45, 16);
  const first = pool.forTokens(37);
  assert.deepEqual([first.maxTokens, first.maxK, first.maxN, first.cap], [512, 68, 45, 16]);
  assert.equal(pool.forTokens(512), first);
  const grown = pool.forTokens(513);
  assert.notEqual(grown, first);
  assert.equal(grown.maxTokens, 1024);
  assert.equal(pool.forTokens(5), grown);
  pool.destroy();
});
