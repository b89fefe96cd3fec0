import assert from "node:assert/strict";
import { pixelShuffle } from "../../src/ops/pixel_shuffle.ts";
import { pixelShuffleRef } from "../../src/ref/pixel_shuffle.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

const goldens = new URL("../fixtures/tiny-internvl/goldens/", import.meta.url);
const readF32 = (name: string) => new Float32Array(Deno.readFileSync(new URL(name, goldens)).buffer);

Deno.test("pixelShuffleRef reproduces the fixture's pixel_shuffled golden exactly", () => {
  const hidden = readF32("img1.vit_last_hidden.f32.bin"); // [1, 1025, 64]
  const shuffled = readF32("img1.pixel_shuffled.f32.bin"); // [1, 256, 256]
  assert.deepEqual(pixelShuffleRef(hidden, 1, 32, 64), shuffled);
});

Deno.test("pixelShuffle on the GPU reproduces the fixture golden exactly", async () => {
  const gpu = await testGpu();
  const x = gpu.uploadTensor("vit", "f32", [1, 1025, 64], readF32("img1.vit_last_hidden.f32.bin"));
  const out = gpu.createTensor("shuffled", "f32", [1, 256, 256]);
  const r = gpu.recorder("test");
  pixelShuffle(r, x, out, { gridSide: 32 });
  r.submit();
  assert.deepEqual(await gpu.readF32(out), readF32("img1.pixel_shuffled.f32.bin"));
});

Deno.test("pixelShuffle matches the CPU reference on several tiles and odd channel counts", async (t) => {
  const gpu = await testGpu();
  for (const [N, P, C] of [[1, 2, 1], [3, 4, 5], [2, 6, 33], [13, 8, 7]]) {
    await t.step(`N=${N} P=${P} C=${C}`, async () => {
      const x = randomF32(N * (1 + P * P) * C, N * 100 + P * 10 + C);
      const gx = gpu.uploadTensor("x", "f32", [N, 1 + P * P, C], x);
      const out = gpu.createTensor("out", "f32", [N, (P / 2) ** 2, 4 * C]);
      const r = gpu.recorder("test");
      pixelShuffle(r, gx, out, { gridSide: P });
      r.submit();
      assert.deepEqual(await gpu.readF32(out), pixelShuffleRef(x, N, P, C));
    });
  }
});

Deno.test("pixelShuffle rejects an odd grid side", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("x", "f32", [1, 10, 2]);
  assert.throws(() => pixelShuffle(gpu.recorder("t"), x, x, { gridSide: 3 }), /grid side 3 must be/);
});
