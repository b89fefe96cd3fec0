import assert from "node:assert/strict";
import { KvCache, type KvCacheDtype } from "../../src/model/kv_cache.ts";
import type { LanguageDims } from "../../src/model/dims.ts";
import { testGpu } from "../kernels/check.ts";

// Only the cache's sizes matter here: 2 layers of 3 kv heads × 6 (18 values a position, 9 bf16 words).
const dims = { layers: 2, kvHeads: 3, headDim: 6 } as LanguageDims;

for (const dtype of ["f32", "bf16"] as KvCacheDtype[]) {
  Deno.test(`KvCache ${dtype}: copyRowsTo puts the chosen rows of every layer in order, repeats allowed`, async () => {
    const gpu = await testGpu();
    const [B, S] = [4, 5];
    const src = new KvCache(gpu, dims, B, S, dtype);
    const dst = new KvCache(gpu, dims, B, S, dtype);
    try {
      // Random words (any bits: the copy must not look at them), different in every layer and in k and v.
      const words = src.k[0].byteLength / 4;
      const fill = () => Uint32Array.from({ length: words }, () => (Math.random() * 2 ** 32) >>> 0);
      const data = { k: src.k.map(fill), v: src.v.map(fill) };
      src.k.forEach((t, l) => gpu.writeTensor(t, data.k[l]));
      src.v.forEach((t, l) => gpu.writeTensor(t, data.v[l]));
      const rows = [2, 0, 2];
      const r = gpu.recorder("test.copy_rows");
      src.copyRowsTo(r, rows, dst);
      r.submit();
      const rowWords = words / B;
      for (const side of ["k", "v"] as const) {
        for (let l = 0; l < dims.layers; l++) {
          const got = await gpu.readU32(dst[side][l]);
          rows.forEach((from, to) => {
            assert.deepEqual(
              got.subarray(to * rowWords, (to + 1) * rowWords),
              data[side][l].subarray(from * rowWords, (from + 1) * rowWords),
              `${side} layer ${l}: row ${to} should be source row ${from}`,
            );
          });
        }
      }
      assert.equal(rowWords, S * (dtype === "bf16" ? 9 : 18));
      assert.throws(() => src.copyRowsTo(gpu.recorder("bad"), [4], dst), /rows \[4\]/);
      const other = new KvCache(gpu, dims, B, S, dtype === "f32" ? "bf16" : "f32");
      try {
        assert.throws(() => src.copyRowsTo(gpu.recorder("bad"), [0], other), /not shaped like/);
      } finally {
        other.destroy();
      }
    } finally {
      src.destroy();
      dst.destroy();
    }
  });
}
