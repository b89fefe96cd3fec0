import assert from "node:assert/strict";
import { uploadLinear } from "../../src/ops/linear.ts";
import {
  blockRowMajor,
  recordMatvecRowProbe,
  recordStreamRead,
  rowProbeName,
  type RowProbeVariant,
} from "../../src/ops/stream_probe.ts";
import { linearRef } from "../../src/ref/linear.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { hostInt8 } from "./host_linear.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("matvec row probe (experiment): every knob's product against the CPU", async (t) => {
  const gpu = await testGpu();
  // K/4 = 2085 words: two full rounds of the widest (128 lanes × 8 words) and a tail; 37 rows leave part of
  // the last workgroup (and, with two rows a lane, a lane's second row) past N.
  const N = 37, K = 8340;
  const host = hostInt8(N, K, false, 11);
  const w = uploadLinear(gpu, "w", host);
  if (w.kind !== "int8") throw new Error("int8 weights expected");
  const xs = randomF32(K, 12);
  const x = gpu.uploadTensor("x", "f32", [1, K], xs);
  const prev = randomF32(N, 13);
  const out = gpu.createTensor("out", "f32", [1, N]);
  const variants: [RowProbeVariant, boolean][] = [
    [{ UW: 2, LANES: 32 }, false],
    [{ UW: 4, LANES: 32 }, true],
    [{ UW: 8, LANES: 32 }, false],
    [{ UW: 8, LANES: 64, ACC: 2 }, true],
    [{ UW: 4, LANES: 32, ACC: 4 }, false],
    [{ UW: 4, LANES: 64, ACC: 2, PIPE: true }, false],
    [{ UW: 8, LANES: 128, ACC: 4, PIPE: true }, true],
    [{ UW: 8, LANES: 32, PIPE: true }, false],
    [{ UW: 4, LANES: 32, R2: true }, true],
    [{ UW: 4, LANES: 64, R2: true }, false],
    [{ UW: 4, LANES: 128, R2: true }, true],
    // No x loads: x is (1, 1/2, 1/4, 1/8) repeated, so the weights must still all be read.
    [{ UW: 8, LANES: 32, MATH: 1 }, false],
    [{ UW: 4, LANES: 64, MATH: 1, R2: true }, false],
  ];
  const ref = linearRef(xs, 1, host);
  const constX = Float32Array.from({ length: K }, (_, k) => 2 ** -(k % 4));
  const refConst = linearRef(constX, 1, host);
  for (const [v, accumulate] of variants) {
    await t.step(`${rowProbeName(v)}${accumulate ? " accumulate" : ""}`, async () => {
      gpu.writeTensor(out, prev);
      const r = gpu.recorder("row probe");
      recordMatvecRowProbe(r, x, w.weight, w.scale, out, v, accumulate);
      r.submit();
      const want = (v.MATH === 1 ? refConst : ref).map((y, n) => y + (accumulate ? prev[n] : 0));
      assertNormalisedError(await gpu.readF32(out), want, tolerance.matmul.nerr);
    });
  }
});

Deno.test("matvec row probe (experiment): block-major weights give the row-major product", async (t) => {
  const gpu = await testGpu();
  // K/4 = 2048 words: two blocks of the widest round (128 lanes × 8 words), 16 of the narrowest.
  const N = 37, K = 8192;
  const host = hostInt8(N, K, false, 21);
  const w = uploadLinear(gpu, "w", host);
  if (w.kind !== "int8") throw new Error("int8 weights expected");
  const words = new Uint32Array(host.weight.buffer, host.weight.byteOffset, (N * K) / 4);
  const xs = randomF32(K, 22);
  const x = gpu.uploadTensor("x", "f32", [1, K], xs);
  const prev = randomF32(N, 23);
  const out = gpu.createTensor("out", "f32", [1, N]);
  const ref = linearRef(xs, 1, host);
  const variants: [RowProbeVariant, boolean][] = [
    [{ UW: 8, LANES: 32, BLOCKED: true }, false],
    [{ UW: 4, LANES: 32, ACC: 2, BLOCKED: true }, true],
    [{ UW: 2, LANES: 64, BLOCKED: true }, false],
    [{ UW: 8, LANES: 128, ACC: 4, BLOCKED: true }, true],
  ];
  for (const [v, accumulate] of variants) {
    await t.step(`${rowProbeName(v)}${accumulate ? " accumulate" : ""}`, async () => {
      const blocked = gpu.uploadTensor("w blocked", "i8x4", [N, K], blockRowMajor(words, N, v.UW * v.LANES));
      gpu.writeTensor(out, prev);
      const r = gpu.recorder("row probe");
      recordMatvecRowProbe(r, x, blocked, w.scale, out, v, accumulate);
      r.submit();
      const want = ref.map((y, n) => y + (accumulate ? prev[n] : 0));
      assertNormalisedError(await gpu.readF32(out), want, tolerance.matmul.nerr);
      blocked.buffer.destroy();
    });
  }
  assert.throws(
    () =>
      recordMatvecRowProbe(gpu.recorder("x"), x, w.weight, w.scale, out, {
        UW: 8,
        LANES: 32,
        PIPE: true,
        BLOCKED: true,
      }),
    /BLOCKED/,
  );
});

Deno.test("stream read probe (experiment): a thread reads every word of its stride", async (t) => {
  const gpu = await testGpu();
  const total = 256 * 7 * 3 + 13;
  const data = new Uint32Array(4 * total).map((_, i) => Math.imul(i + 1, 0x9e3779b1) >>> 0);
  const w = gpu.uploadTensor("words", "u32", [4 * total], data);
  const sink = gpu.createTensor("sink", "u32", [4]);
  // Thread 0's XOR over words 0, s, 2s, … (s = 256 · workgroups), folded to one u32 as the kernel does.
  const threadZero = (s: number) => {
    let h = 0;
    for (let i = 0; i < total; i += s) h ^= data[4 * i] ^ data[4 * i + 1] ^ data[4 * i + 2] ^ data[4 * i + 3];
    return h >>> 0;
  };
  for (const workgroups of [1, 3]) {
    for (const U of [1, 2, 4] as const) {
      await t.step(`${workgroups} workgroups, U${U}`, async () => {
        const magic = threadZero(256 * workgroups);
        for (const [m, want] of [[magic ^ 1, 0], [magic, magic]]) {
          gpu.writeTensor(sink, new Uint32Array(4));
          const r = gpu.recorder("stream read");
          recordStreamRead(r, w, sink, { workgroups, U, magic: m });
          r.submit();
          assert.equal((await gpu.readU32(sink))[0], want, `magic ${m}`);
        }
      });
    }
  }
});
