import assert from "node:assert/strict";
import { testGpu } from "../kernels/check.ts";

Deno.test("uploads larger than one write piece arrive whole", async () => {
  const gpu = await testGpu();
  const n = 64 * 1024 * 1024 / 4 + 1027; // just past one 64 MiB piece, odd length
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i % 9973) - 4986.5;
  const t = gpu.uploadTensor("big", "f32", [n], data);
  const back = await gpu.readF32(t);
  assert.equal(back.length, n);
  for (const i of [0, 1, n / 2 | 0, 16 * 1024 * 1024 - 1, 16 * 1024 * 1024, n - 1]) {
    assert.equal(back[i], data[i], `at ${i}`);
  }
  t.buffer.destroy();
});
