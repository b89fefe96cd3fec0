import assert from "node:assert/strict";
import { fillRandom } from "../../src/ops/fill_random.ts";
import { testGpu } from "../kernels/check.ts";

Deno.test("Recorder.holdSubmits: submits encode but run only when released, in order", async () => {
  const gpu = await testGpu();
  const a = gpu.createTensor("a", "f32", [333]), b = gpu.createTensor("b", "f32", [333]);
  const r = gpu.recorder("held");
  const release = r.holdSubmits();
  fillRandom(r, a, { seed: 5 });
  r.submit();
  fillRandom(r, b, { seed: 6, lo: 2, hi: 3 }); // a second part, after the first
  r.submit();
  assert.ok((await gpu.readF32(a)).every((x) => x === 0), "a held part ran before the release");
  assert.ok((await gpu.readF32(b)).every((x) => x === 0), "a held part ran before the release");
  release();
  const [ga, gb] = [await gpu.readF32(a), await gpu.readF32(b)];
  assert.ok(ga.every((x) => x >= -1 && x <= 1) && ga.some((x) => x !== 0), "the first part");
  assert.ok(gb.every((x) => x >= 2 && x <= 3), "the second part");
  // Released once: later submits run at once again.
  const c = gpu.createTensor("c", "f32", [17]);
  fillRandom(r, c, { seed: 7, lo: 4, hi: 5 });
  r.submit();
  assert.ok((await gpu.readF32(c)).every((x) => x >= 4 && x <= 5));
  for (const t of [a, b, c]) t.buffer.destroy();
});
