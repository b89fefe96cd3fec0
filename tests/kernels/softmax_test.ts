import assert from "node:assert/strict";
import { softmax } from "../../src/ops/softmax.ts";
import { softmaxRef } from "../../src/ref/softmax.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("softmax matches the CPU reference, large logits and the real vocab included", async (t) => {
  const gpu = await testGpu();
  for (
    const [R, C, lo, hi] of [[1, 1, -1, 1], [3, 7, -5, 5], [17, 257, -30, 30], [2, 92553, -20, 20], [
      5,
      300,
      80,
      120,
    ]]
  ) {
    await t.step(`R=${R} C=${C} logits in [${lo}, ${hi})`, async () => {
      const x = randomF32(R * C, R * 7 + C, lo, hi);
      const gx = gpu.uploadTensor("x", "f32", [R, C], x);
      const out = gpu.createTensor("out", "f32", [R, C]);
      const r = gpu.recorder("test");
      softmax(r, gx, out);
      r.submit();
      const got = await gpu.readF32(out), want = softmaxRef(x, R, C);
      // exp of values near 100 overflows without the max subtraction: finiteness is part of the check.
      assertNormalisedError(got, want, tolerance.reduction.nerr);
      assertClose(got, want, tolerance.softmax.atol, tolerance.softmax.rtol);
    });
  }
});

Deno.test("softmax refuses to write over its input", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("x", "f32", [2, 3]);
  assert.throws(() => softmax(gpu.recorder("t"), x, x), /out must not alias x/);
});
