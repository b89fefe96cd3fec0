import assert from "node:assert/strict";
import { gelu } from "../../src/ops/gelu.ts";
import { erfRef, geluRef } from "../../src/ref/gelu.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("erfRef reproduces tabulated erf values", () => {
  // Abramowitz & Stegun table 7.1 / mpmath
  const table = [
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [
      2,
      0.9953222650189527,
    ],
    [3.5, 0.9999992569016276],
    [-1.5, -0.9661051464753108],
  ];
  for (const [x, e] of table) assert.ok(Math.abs(erfRef(x) - e) < 1e-15, `erf(${x}) = ${erfRef(x)}`);
});

Deno.test("gelu matches the exact erf GELU", async (t) => {
  const gpu = await testGpu();
  for (const [T, N] of [[1, 1], [1, 7], [3, 255], [5, 257], [33, 1000]]) {
    await t.step(`T=${T} N=${N}`, async () => {
      const x = randomF32(T * N, T * 1009 + N, -8, 8);
      // Both sides of the series/erfc switch at |x| = √2 · 0.5, the origin and the saturated tails.
      const special = [0, 0.70710677, 0.7071068, -0.70710677, -0.7071068, 1e-30, -3.5, 20, -20, -100];
      x.set(special.slice(0, x.length));
      const gx = gpu.uploadTensor("x", "f32", [T, N], x);
      const out = gpu.createTensor("out", "f32", [T, N]);
      const r = gpu.recorder("test");
      gelu(r, gx, out);
      r.submit();
      const tol = tolerance.erfGelu;
      assertClose(await gpu.readF32(out), geluRef(x), tol.atol, tol.rtol);
    });
  }
});
