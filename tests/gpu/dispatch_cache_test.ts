import assert from "node:assert/strict";
import { DispatchCache } from "../../src/gpu/dispatch_cache.ts";
import { residualAdd } from "../../src/ops/residual_add.ts";
import { residualAddRef } from "../../src/ref/residual_add.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "../kernels/check.ts";

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
