import { siluMul } from "../../src/ops/silu_mul.ts";
import { siluMulRef } from "../../src/ref/silu_mul.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("siluMul matches the CPU reference, saturated gates included", async (t) => {
  const gpu = await testGpu();
  for (const [T, N] of [[1, 1], [1, 7], [3, 255], [5, 257], [33, 1000]]) {
    await t.step(`T=${T} N=${N}`, async () => {
      const gate = randomF32(T * N, T * 71 + N, -10, 10);
      gate.set([-100, 100, 0, -30, 30, 1e-20].slice(0, gate.length));
      const up = randomF32(T * N, T * 73 + N, -3, 3);
      const gg = gpu.uploadTensor("gate", "f32", [T, N], gate);
      const gu = gpu.uploadTensor("up", "f32", [T, N], up);
      const out = gpu.createTensor("out", "f32", [T, N]);
      const r = gpu.recorder("test");
      siluMul(r, gg, gu, out);
      r.submit();
      const tol = tolerance.transcendental;
      assertClose(await gpu.readF32(out), siluMulRef(gate, up), tol.atol, tol.rtol);
    });
  }
});
