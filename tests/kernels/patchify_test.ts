import { linear } from "../../src/ops/linear.ts";
import { patchify } from "../../src/ops/patchify.ts";
import { patchConvRef, patchifyRef } from "../../src/ref/patchify.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("patchify then linear with the flattened conv weight is the patch-embedding conv", async (t) => {
  const gpu = await testGpu();
  // [N, S, p, D]: odd patch sizes, one patch per image, a 3×3 grid of 14-px patches (the real p).
  for (const [N, S, p, D] of [[1, 2, 2, 1], [2, 9, 3, 5], [1, 14, 14, 7], [3, 42, 14, 33]]) {
    await t.step(`N=${N} S=${S} p=${p} D=${D}`, async () => {
      const seed = N * 13 + S * 7 + p + D * 101;
      const pixels = randomF32(N * 3 * S * S, seed, -2, 2);
      const weight = randomF32(D * 3 * p * p, seed + 1, -0.1, 0.1); // [D, 3, p, p]
      const bias = randomF32(D, seed + 2);
      const G = S / p, K = 3 * p * p;
      const gPixels = gpu.uploadTensor("pixels", "f32", [N, 3, S, S], pixels);
      const cols = gpu.createTensor("cols", "f32", [N, G * G, K]);
      const r = gpu.recorder("test");
      patchify(r, gPixels, cols, p);
      r.submit();
      const colsHost = await gpu.readF32(cols);
      assertClose(colsHost, patchifyRef(pixels, N, S, p), tolerance.exact.atol, tolerance.exact.rtol);

      // The conv as a linear layer over the im2col rows: x [N·G², K], W [D, K].
      const x = gpu.uploadTensor("x", "f32", [N * G * G, K], colsHost);
      const w = {
        kind: "f32" as const,
        weight: gpu.uploadTensor("conv.weight", "f32", [D, K], weight),
        bias: gpu.uploadTensor("conv.bias", "f32", [D], bias),
      };
      const out = gpu.createTensor("out", "f32", [N * G * G, D]);
      const r2 = gpu.recorder("test");
      linear(r2, x, w, out);
      r2.submit();
      const expected = patchConvRef(pixels, N, S, p, weight, bias, D);
      assertNormalisedError(await gpu.readF32(out), expected, tolerance.matmul.nerr);
    });
  }
});
