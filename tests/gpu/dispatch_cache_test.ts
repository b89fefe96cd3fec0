import assert from "node:assert/strict";
import { DispatchCache, sameConstants } from "../../src/gpu/dispatch_cache.ts";
import { uploadLinear } from "../../src/ops/linear.ts";
import { recordMatvecRowProbe } from "../../src/ops/stream_probe.ts";
import { linearRef } from "../../src/ref/linear.ts";
import { hostInt8 } from "../kernels/host_linear.ts";
import { residualAdd } from "../../src/ops/residual_add.ts";
import { residualAddRef } from "../../src/ref/residual_add.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "../kernels/check.ts";
import { rowsView } from "../../src/gpu/tensor.ts";

Deno.test("a DispatchCache reuses bind groups across submits while params and buffers stay right", async () => {
  const gpu = await testGpu();
  const cache = new DispatchCache("test");
  const [T, D] = [5, 37];
  const x = randomF32(T * D, 1), y1 = randomF32(T * D, 2), y2 = randomF32(T * D, 3), s = randomF32(D, 4);
  const acc = gpu.uploadTensor("acc", "f32", [T, D], x);
  const a = gpu.uploadTensor("y1", "f32", [T, D], y1), b = gpu.uploadTensor("y2", "f32", [T, D], y2);
  const scale = gpu.uploadTensor("s", "f32", [D], s);
  const step = (y: typeof a, withScale: boolean) => {
    const r = gpu.recorder("cached", cache);
    residualAdd(r, acc, y, withScale ? scale : null);
    r.submit();
  };
  step(a, false); // miss: first time
  step(a, false); // hit
  step(a, true); // hit on the bind group? no: the scale buffer is bound instead of y, so a miss
  step(b, false); // miss: another buffer
  assert.deepEqual([cache.hits, cache.misses], [1, 3]);
  let want = residualAddRef(x, y1, null, D);
  want = residualAddRef(want, y1, null, D);
  want = residualAddRef(want, y1, s, D);
  want = residualAddRef(want, y2, null, D);
  assertClose(await gpu.readF32(acc), want, 1e-6, 1e-6);
  cache.destroy();
});

Deno.test("a DispatchCache misses when only a dispatch's override constants change", async () => {
  const gpu = await testGpu();
  const cache = new DispatchCache("test");
  const [N, K] = [21, 520];
  const host = hostInt8(N, K, false, 5);
  const w = uploadLinear(gpu, "w", host);
  if (w.kind !== "int8") throw new Error("int8 weights expected");
  const xs = randomF32(K, 6);
  const x = gpu.uploadTensor("x", "f32", [1, K], xs);
  const out = gpu.createTensor("out", "f32", [1, N]);
  // Same kernel, buffers and params; MATH 1 takes x as (1, 1/2, 1/4, 1/8) repeated instead of reading it.
  const run = async (MATH: 0 | 1) => {
    const r = gpu.recorder("cached", cache);
    recordMatvecRowProbe(r, x, w.weight, w.scale, out, { UW: 4, LANES: 32, MATH });
    r.submit();
    return await gpu.readF32(out);
  };
  const constX = Float32Array.from({ length: K }, (_, k) => 2 ** -(k % 4));
  assertClose(await run(0), linearRef(xs, 1, host), 1e-4, 1e-5);
  assertClose(await run(1), linearRef(constX, 1, host), 1e-4, 1e-5);
  assertClose(await run(1), linearRef(constX, 1, host), 1e-4, 1e-5);
  assert.deepEqual([cache.hits, cache.misses], [1, 2]);
  assert.ok(sameConstants({ a: 1, b: 2 }, { b: 2, a: 1 }));
  for (
    const [a, b] of [[{ a: 1 }, { a: 2 }], [{ a: 1 }, { a: 1, b: 0 }], [{ a: 1, b: 0 }, { a: 1 }], [{}, {
      a: 0,
    }]]
  ) {
    assert.equal(sameConstants(a, b), false, JSON.stringify([a, b]));
  }
  cache.destroy();
});

Deno.test("row views: a kernel bound rows of a buffer reads and writes those rows; the cache tells views apart", async () => {
  const gpu = await testGpu();
  const cache = new DispatchCache("test");
  // 64 floats a row: a view may start at any row (256 bytes).
  const [T, D] = [7, 64];
  const x = randomF32(T * D, 11), y = randomF32(T * D, 12);
  const acc = gpu.uploadTensor("acc", "f32", [T, D], x);
  const add = gpu.uploadTensor("y", "f32", [T, D], y);
  // The same dispatch on rows 1–2, then 4–6 of both tensors, each twice: one miss per view, then hits.
  for (const [from, n] of [[1, 2], [1, 2], [4, 3], [4, 3]]) {
    const r = gpu.recorder("views", cache);
    residualAdd(r, rowsView(acc, from, n), rowsView(add, from, n), null);
    r.submit();
  }
  assert.deepEqual([cache.hits, cache.misses], [2, 2]);
  const want = Float32Array.from(x);
  for (const [from, n] of [[1, 2], [4, 3]]) {
    for (let i = from * D; i < (from + n) * D; i++) want[i] += 2 * y[i];
  }
  assertClose(await gpu.readF32(acc), want, 1e-6, 1e-6);
  assertClose(await gpu.readF32(rowsView(acc, 4, 3)), want.subarray(4 * D), 1e-6, 1e-6);
  // Rows of 37 floats start on 256 bytes only every 64 rows; and a view of a view is refused.
  const odd = gpu.createTensor("odd", "f32", [70, 37]);
  assert.throws(() => rowsView(odd, 1, 2), /not a multiple of 256/);
  assert.equal(rowsView(odd, 64, 6).byteOffset, 64 * 37 * 4);
  assert.throws(() => rowsView(rowsView(acc, 1, 4), 1, 1), /seen whole/);
  cache.destroy();
});
