import assert from "node:assert/strict";
import { splitVitQkv } from "../../src/ops/split_vit_qkv.ts";
import { splitVitQkvRef } from "../../src/ref/split_vit_qkv.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

Deno.test("splitVitQkv copies the [q | k | v] column blocks exactly", async (t) => {
  const gpu = await testGpu();
  for (const [T, D] of [[1, 5], [3, 64], [1025, 64], [7, 257]]) {
    await t.step(`T=${T} D=${D}`, async () => {
      const qkv = randomF32(T * 3 * D, 11 * T + D);
      const g = gpu.uploadTensor("qkv", "f32", [T, 3 * D], qkv);
      const [q, k, v] = ["q", "k", "v"].map((n) => gpu.createTensor(n, "f32", [T, D]));
      const r = gpu.recorder("test");
      splitVitQkv(r, g, q, k, v);
      r.submit();
      const want = splitVitQkvRef(qkv, T, D);
      assert.deepEqual(await gpu.readF32(q), want.q);
      assert.deepEqual(await gpu.readF32(k), want.k);
      assert.deepEqual(await gpu.readF32(v), want.v);
    });
  }
});

Deno.test("splitVitQkv rejects a qkv width that is not 3·D", async () => {
  const gpu = await testGpu();
  const qkv = gpu.createTensor("qkv", "f32", [2, 12]);
  const q = gpu.createTensor("q", "f32", [2, 3]);
  assert.throws(() => splitVitQkv(gpu.recorder("t"), qkv, q, q, q), /splitVitQkv qkv: expected \[2, 9\] f32/);
});
