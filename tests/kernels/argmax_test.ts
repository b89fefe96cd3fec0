import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import { argmax } from "../../src/ops/argmax.ts";
import { argmaxRef } from "../../src/ref/argmax.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";

const goldens = new URL("../fixtures/tiny-internvl/goldens/", import.meta.url);

async function argmaxOnGpu(gpu: Gpu, x: Float32Array, B: number, V: number): Promise<Int32Array> {
  const g = gpu.uploadTensor("logits", "f32", [B, V], x);
  const out = gpu.createTensor("ids", "i32", [B]);
  const r = gpu.recorder("test");
  argmax(r, g, out);
  r.submit();
  const ids = await gpu.readI32(out);
  g.buffer.destroy();
  out.buffer.destroy();
  return ids;
}

Deno.test("argmax matches the CPU reference on random rows, the real vocab size included", async (t) => {
  const gpu = await testGpu();
  for (const [B, V] of [[1, 1], [1, 7], [3, 300], [2, 92553], [5, 809]]) {
    await t.step(`B=${B} V=${V}`, async () => {
      const x = randomF32(B * V, B * 31 + V, -20, 20);
      assert.deepEqual(await argmaxOnGpu(gpu, x, B, V), argmaxRef(x, B, V));
    });
  }
});

Deno.test("argmax picks the lowest index among tied maxima, wherever the ties fall", async (t) => {
  const gpu = await testGpu();
  // 1000: every thread holds at most one logit; 20011: threads scan several rounds of eight.
  for (const V of [1000, 20011]) {
    await t.step(`V=${V}`, async () => {
      const B = 4;
      const x = randomF32(B * V, 5 + V, -5, 5);
      const draw = rng(9 + V);
      // Each row gets the same maximum at several indices spread over different threads' slices, and at
      // two indices of one thread's slice (q and q + 2048, 1024 threads a row).
      for (let b = 0; b < B; b++) {
        const q = Math.floor(draw() * (V - 2048));
        const at = [Math.floor(draw() * V), Math.floor(draw() * V), Math.floor(draw() * V), V - 1 - b];
        if (V > 2048) at.push(q, q + 2048);
        for (const i of at) x[b * V + i] = 7;
      }
      x.fill(-Infinity, 3 * V, 4 * V - 1); // a row of −inf but one finite logit
      assert.deepEqual(await argmaxOnGpu(gpu, x, B, V), argmaxRef(x, B, V));
    });
  }
});

Deno.test("argmax finds a maximum in every slot of a thread's rounds of eight", async () => {
  const gpu = await testGpu();
  const V = 20011, B = 10; // 1024 threads a row: thread 100 reads 100, 1124, 2148, …
  const x = randomF32(B * V, 77, -5, 5);
  for (let b = 0; b < B; b++) x[b * V + 100 + b * 1024] = 9; // slots 0–7 of round one, 0–1 of round two
  assert.deepEqual(
    Array.from(await argmaxOnGpu(gpu, x, B, V)),
    Array.from({ length: B }, (_, b) => 100 + b * 1024),
  );
});

Deno.test("argmax reproduces the greedy ids of the fixture's step logits", async () => {
  const gpu = await testGpu();
  const manifest = JSON.parse(Deno.readTextFileSync(new URL("manifest.json", goldens)));
  const c = manifest.cases.find((k: { id: string }) => k.id === "text_only");
  const logits = new Float32Array(
    Deno.readFileSync(new URL("text_only.step_logits.f32.bin", goldens)).buffer,
  );
  const V = 809, steps = logits.length / V;
  const g = gpu.uploadTensor("logits", "f32", [steps, V], logits);
  const out = gpu.createTensor("ids", "i32", [steps]);
  const r = gpu.recorder("test");
  argmax(r, g, out);
  r.submit();
  assert.deepEqual([...await gpu.readI32(out)], c.generated_ids);
});
