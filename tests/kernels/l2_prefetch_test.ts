import assert from "node:assert/strict";
import { l2Prefetch } from "../../src/ops/l2_prefetch.ts";
import { rng } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

Deno.test("l2Prefetch reads every word of its source (odd sizes) and leaves the sink alone by default", async (t) => {
  const gpu = await testGpu();
  // vec4 counts: one, fewer than a workgroup's 1024, a ragged tail, several workgroups.
  for (const vec4s of [1, 257, 1023, 1025, 5003]) {
    await t.step(`${vec4s} vec4s`, async () => {
      const draw = rng(vec4s);
      const words = Uint32Array.from({ length: 4 * vec4s }, () => Math.floor(draw() * 2 ** 32));
      const src = gpu.uploadTensor("src", "u32", [4 * vec4s], words);
      const sink = gpu.uploadTensor("sink", "u32", [1], Uint32Array.of(0x5eed));
      const r = gpu.recorder("test");
      l2Prefetch(r, src, sink); // production mode: sink untouched
      r.submit();
      assert.equal((await gpu.readU32(sink))[0], 0x5eed);
      const r2 = gpu.recorder("test");
      l2Prefetch(r2, src, sink, true);
      r2.submit();
      const want = words.reduce((a, w) => (a ^ w) >>> 0, 0x5eed);
      assert.equal((await gpu.readU32(sink))[0], want);
      src.buffer.destroy();
      sink.buffer.destroy();
    });
  }
});

Deno.test("l2Prefetch refuses a source that is not whole 16-byte vectors", async () => {
  const gpu = await testGpu();
  const src = gpu.createTensor("odd", "u32", [6]);
  const sink = gpu.createTensor("sink", "u32", [1]);
  assert.throws(() => l2Prefetch(gpu.recorder("t"), src, sink), /odd is 24 bytes, not a multiple of 16/);
});
