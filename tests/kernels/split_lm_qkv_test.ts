import assert from "node:assert/strict";
import { splitLmQkv } from "../../src/ops/split_lm_qkv.ts";
import { splitLmQkvRef } from "../../src/ref/split_lm_qkv.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

Deno.test("splitLmQkv de-interleaves InternLM2's per-group [q…q k v] slots exactly", async (t) => {
  const gpu = await testGpu();
  // [T, H, Hkv, Dh]: MHA (G=1), the fixture's GQA 2, the real GQA 6 with Dh=128, odd sizes.
  for (
    const [T, H, Hkv, Dh] of [[1, 4, 2, 16], [5, 3, 3, 7], [2, 48, 8, 128], [37, 6, 2, 9], [300, 4, 2, 16]]
  ) {
    await t.step(`T=${T} H=${H} Hkv=${Hkv} Dh=${Dh}`, async () => {
      const G = H / Hkv;
      const qkv = randomF32(T * Hkv * (G + 2) * Dh, T * 97 + H * 7 + Dh);
      const g = gpu.uploadTensor("qkv", "f32", [T, Hkv * (G + 2) * Dh], qkv);
      const q = gpu.createTensor("q", "f32", [T, H * Dh]);
      const k = gpu.createTensor("k", "f32", [T, Hkv * Dh]);
      const v = gpu.createTensor("v", "f32", [T, Hkv * Dh]);
      const r = gpu.recorder("test");
      splitLmQkv(r, g, q, k, v, { numHeads: H, numKvHeads: Hkv, headDim: Dh });
      r.submit();
      const want = splitLmQkvRef(qkv, T, H, Hkv, Dh);
      assert.deepEqual(await gpu.readF32(q), want.q);
      assert.deepEqual(await gpu.readF32(k), want.k);
      assert.deepEqual(await gpu.readF32(v), want.v);
    });
  }
});

Deno.test("splitLmQkv puts query head h·G+g, key and value of group h where the reference does", () => {
  // Hand-built row: H=4, Hkv=2, Dh=1 → [q0 q1 k0 v0 | q2 q3 k1 v1].
  const { q, k, v } = splitLmQkvRef(new Float32Array([10, 11, 20, 30, 12, 13, 21, 31]), 1, 4, 2, 1);
  assert.deepEqual([...q], [10, 11, 12, 13]);
  assert.deepEqual([...k], [20, 21]);
  assert.deepEqual([...v], [30, 31]);
});

Deno.test("splitLmQkv rejects heads that do not form whole kv groups", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("x", "f32", [1, 8]);
  assert.throws(
    () => splitLmQkv(gpu.recorder("t"), x, x, x, x, { numHeads: 5, numKvHeads: 2, headDim: 1 }),
    /5 query heads do not split into 2 kv groups/,
  );
});
