import assert from "node:assert/strict";
import { residualAdd } from "../../src/ops/residual_add.ts";
import { residualAddRef } from "../../src/ref/residual_add.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("residualAdd matches the CPU reference with and without layer scale", async (t) => {
  const gpu = await testGpu();
  for (const [T, D] of [[1, 7], [3, 64], [17, 257], [1025, 33]]) {
    for (const withScale of [false, true]) {
      await t.step(`T=${T} D=${D} scale=${withScale}`, async () => {
        const x = randomF32(T * D, T * 31 + D), y = randomF32(T * D, T + D * 7);
        const s = withScale ? randomF32(D, D + 5) : null;
        const acc = gpu.uploadTensor("acc", "f32", [T, D], x);
        const gy = gpu.uploadTensor("y", "f32", [T, D], y);
        const gs = s ? gpu.uploadTensor("s", "f32", [D], s) : null;
        const r = gpu.recorder("test");
        residualAdd(r, acc, gy, gs);
        r.submit();
        const tol = tolerance.elementwise;
        assertClose(await gpu.readF32(acc), residualAddRef(x, y, s, D), tol.atol, tol.rtol);
      });
    }
  }
});

Deno.test("residualAdd rejects mismatched shapes and aliasing", async () => {
  const gpu = await testGpu();
  const a = gpu.createTensor("a", "f32", [2, 3]);
  const b = gpu.createTensor("b", "f32", [3, 2]);
  assert.throws(
    () => residualAdd(gpu.recorder("t"), a, b, null),
    /residualAdd y: expected \[2, 3\] f32, got b \[3, 2\] f32/,
  );
  assert.throws(() => residualAdd(gpu.recorder("t"), a, a, null), /must not alias/);
});
