import assert from "node:assert/strict";
import { kvWrite } from "../../src/ops/kv_write.ts";
import { kvWriteRef } from "../../src/ref/kv_write.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

Deno.test("kvWrite places row b·T+t at cache[b, startPos+t] and leaves the rest untouched", async (t) => {
  const gpu = await testGpu();
  // [B, T, S, W, startPos]: prefill from 0, decode in the middle, decode into the last slot, odd widths.
  for (
    const [B, T, S, W, start] of [[1, 5, 9, 16, 0], [2, 1, 40, 24, 17], [3, 1, 8, 7, 7], [2, 33, 70, 130, 30]]
  ) {
    await t.step(`B=${B} T=${T} S=${S} W=${W} startPos=${start}`, async () => {
      const kv = randomF32(B * T * W, B + T + S + W);
      // The cache starts from random (non-zero) contents so untouched rows are checked too.
      const before = randomF32(B * S * W, S * 3 + W);
      const gkv = gpu.uploadTensor("kv", "f32", [B * T, W], kv);
      const cache = gpu.uploadTensor("cache", "f32", [B, S, W], before);
      const r = gpu.recorder("test");
      kvWrite(r, gkv, cache, { batch: B, tokens: T, startPos: start });
      r.submit();
      assert.deepEqual(await gpu.readF32(cache), kvWriteRef(kv, before, B, T, S, W, start));
    });
  }
});

Deno.test("kvWrite refuses positions past the cache capacity", async () => {
  const gpu = await testGpu();
  const kv = gpu.createTensor("kv", "f32", [2, 4]);
  const cache = gpu.createTensor("cache", "f32", [1, 5, 4]);
  assert.throws(
    () => kvWrite(gpu.recorder("t"), kv, cache, { batch: 1, tokens: 2, startPos: 4 }),
    /positions 4…5 do not fit a cache of 5 positions/,
  );
});
