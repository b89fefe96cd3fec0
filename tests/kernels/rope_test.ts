import assert from "node:assert/strict";
import { dynamicNtkBase, rope, ropeTables } from "../../src/ops/rope.ts";
import { ropeRef } from "../../src/ref/rope.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("rope matches the CPU reference at scattered positions, late ones included", async (t) => {
  const gpu = await testGpu();
  const P = 32768;
  const tables = { 16: ropeTables(1e6, 16, P), 128: ropeTables(1e6, 128, P), 6: ropeTables(1e4, 6, P) };
  const gcos = new Map<number, ReturnType<typeof gpu.uploadTensor>>();
  const gsin = new Map<number, ReturnType<typeof gpu.uploadTensor>>();
  for (const [dh, tb] of Object.entries(tables)) {
    gcos.set(+dh, gpu.uploadTensor("cos", "f32", [P, +dh / 2], tb.cos));
    gsin.set(+dh, gpu.uploadTensor("sin", "f32", [P, +dh / 2], tb.sin));
  }
  for (const [T, nH, Dh] of [[1, 2, 16], [5, 3, 6], [37, 8, 128], [300, 4, 16]] as const) {
    await t.step(`T=${T} nH=${nH} Dh=${Dh}`, async () => {
      const x = randomF32(T * nH * Dh, T * 13 + nH + Dh);
      const draw = rng(T + Dh);
      const positions = Int32Array.from({ length: T }, (_, i) => i === 0 ? P - 1 : Math.floor(draw() * P));
      const gx = gpu.uploadTensor("x", "f32", [T, nH * Dh], x);
      const gp = gpu.uploadTensor("pos", "i32", [T], positions);
      const r = gpu.recorder("test");
      rope(r, gx, gp, gcos.get(Dh)!, gsin.get(Dh)!, { numHeads: nH, headDim: Dh });
      r.submit();
      const tb = tables[Dh];
      const tol = tolerance.elementwise;
      assertClose(await gpu.readF32(gx), ropeRef(x, positions, tb.cos, tb.sin, nH, Dh), tol.atol, tol.rtol);
    });
  }
});

Deno.test("ropeTables rounds inv_freq and the angles to float32 like the reference", () => {
  const Dh = 128, t = 30000, i = 37;
  const { cos, sin } = ropeTables(1e6, Dh, t + 1);
  // inv_freq[0] = 1 exactly, so column 0 is cos(t) itself.
  assert.equal(cos[t * 64], Math.fround(Math.cos(t)));
  // The float64 angle differs from the float32 one by ~1e-4 rad at this position; the table follows f32.
  const f32Angle = Math.fround(t * Math.fround(1 / Math.fround(1e6 ** Math.fround((2 * i) / Dh))));
  const f64Angle = t / 1e6 ** ((2 * i) / Dh);
  assert.equal(sin[t * 64 + i], Math.fround(Math.sin(f32Angle)));
  assert.notEqual(Math.fround(Math.sin(f64Angle)), Math.fround(Math.sin(f32Angle)));
});

Deno.test("dynamicNtkBase keeps θ up to 32768 positions and rescales past it", () => {
  assert.equal(dynamicNtkBase(1e6, 128, 32768), 1e6);
  // θ·(2·65536/32768 − 1)^(128/126), computed independently in Python.
  assert.ok(Math.abs(dynamicNtkBase(1e6, 128, 65536) - 3052773.67488067) < 1e-6);
  const scaled = ropeTables(1e6, 128, 2, dynamicNtkBase(1e6, 128, 65536));
  const plain = ropeTables(1e6, 128, 2);
  assert.equal(scaled.cos[64], plain.cos[64]); // i = 0 has inv_freq 1 under any base
  assert.notEqual(scaled.cos[64 + 10], plain.cos[64 + 10]);
});
