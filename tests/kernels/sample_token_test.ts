import assert from "node:assert/strict";
import { sampleToken, type SamplingOptions } from "../../src/ops/sample_token.ts";
import { sampleTokenRef } from "../../src/ref/sample_token.ts";
import { argmaxRef } from "../../src/ref/argmax.ts";
import { randomF32 } from "../../src/ref/random.ts";
import type { Gpu } from "../../src/gpu/device.ts";
import { testGpu } from "./check.ts";

async function sampleOnGpu(gpu: Gpu, logits: Float32Array, B: number, V: number, o: SamplingOptions) {
  const g = gpu.uploadTensor("logits", "f32", [B, V], logits);
  const out = gpu.createTensor("ids", "i32", [B]);
  const r = gpu.recorder("test");
  sampleToken(r, g, out, o);
  r.submit();
  return await gpu.readI32(out);
}

/** Rows that repeat one distribution: each row draws with its own counter, i.e. independent samples. */
function repeatRows(row: number[], B: number): Float32Array {
  const x = new Float32Array(B * row.length);
  for (let b = 0; b < B; b++) x.set(row, b * row.length);
  return x;
}

Deno.test("sampleToken draws the same ids as the sorting CPU reference", async (t) => {
  const gpu = await testGpu();
  const grid: [number, number, SamplingOptions][] = [
    [4, 809, { temperature: 1, topK: 0, topP: 1, seed: 1, step: 0 }],
    [4, 809, { temperature: 0.7, topK: 50, topP: 1, seed: 2, step: 5 }],
    [64, 809, { temperature: 0.8, topK: 0, topP: 0.7, seed: 3, step: 7 }],
    [3, 300, { temperature: 1.3, topK: 20, topP: 0.5, seed: 4294967295, step: 4294967295 }],
    [2, 92553, { temperature: 0.6, topK: 40, topP: 0.8, seed: 42, step: 3 }],
  ];
  for (const [B, V, o] of grid) {
    await t.step(`B=${B} V=${V} ${JSON.stringify(o)}`, async () => {
      const logits = randomF32(B * V, V + o.seed, -6, 6);
      assert.deepEqual(await sampleOnGpu(gpu, logits, B, V, o), sampleTokenRef(logits, B, V, o));
    });
  }
});

Deno.test("sampleToken with top_k = 1 is argmax", async () => {
  const gpu = await testGpu();
  const B = 16, V = 1000;
  const logits = randomF32(B * V, 77, -3, 3);
  for (const seed of [1, 2, 3]) {
    const o = { temperature: 1.5, topK: 1, topP: 1, seed, step: seed };
    assert.deepEqual(await sampleOnGpu(gpu, logits, B, V, o), argmaxRef(logits, B, V));
  }
});

Deno.test("sampleToken with top_k = 1 finds a maximum in every slot of a thread's rounds of eight", async () => {
  const gpu = await testGpu();
  const B = 10, V = 20011; // 1024 threads a row: thread 100 reads 100, 1124, 2148, … eight a round
  const logits = randomF32(B * V, 78, -3, 3);
  for (let b = 0; b < B; b++) logits[b * V + 100 + b * 1024] = 9;
  const ids = await sampleOnGpu(gpu, logits, B, V, { temperature: 0.9, topK: 1, topP: 1, seed: 5, step: 2 });
  assert.deepEqual(Array.from(ids), Array.from({ length: B }, (_, b) => 100 + b * 1024));
});

Deno.test("sampleToken's top-p mass counts every slot of a thread's rounds of eight", async () => {
  const gpu = await testGpu();
  // Three likely tokens in slots 4 and 5 of thread 100 and in the tail; the rest negligible. top_p 0.75
  // keeps exactly the two most likely (0.5 + 0.3), so a wrong sum moves the nucleus.
  const B = 64, V = 20011;
  const row = new Array<number>(V).fill(-30);
  row[100 + 4 * 1024] = Math.log(0.5);
  row[100 + 5 * 1024] = Math.log(0.3);
  row[V - 3] = Math.log(0.2);
  const logits = repeatRows(row, B);
  const o: SamplingOptions = { temperature: 1, topK: 0, topP: 0.75, seed: 11, step: 1 };
  const ids = Array.from(await sampleOnGpu(gpu, logits, B, V, o));
  assert.deepEqual(ids, Array.from(sampleTokenRef(logits, B, V, o)));
  assert.ok(ids.every((id) => id === 100 + 4 * 1024 || id === 100 + 5 * 1024));
  assert.ok(ids.includes(100 + 5 * 1024), "the 0.3 token is drawn at least once in 64 rows");
});

Deno.test("sampleToken with top_p never leaves the nucleus of a peaked distribution", async () => {
  const gpu = await testGpu();
  // Probabilities ∝ [0.5, 0.25, 0.1, 0.05, …]: the 0.8 nucleus is tokens {3, 7, 11}.
  const V = 300, B = 160;
  const row = Array.from({ length: V }, () => Math.log(0.15 / (V - 3)));
  row[3] = Math.log(0.5);
  row[7] = Math.log(0.25);
  row[11] = Math.log(0.1);
  const ids = await sampleOnGpu(gpu, repeatRows(row, B), B, V, {
    temperature: 1,
    topK: 0,
    topP: 0.8,
    seed: 9,
    step: 0,
  });
  assert.ok(ids.every((id) => id === 3 || id === 7 || id === 11), "all ids in the nucleus");
  assert.deepEqual(new Set(ids), new Set([3, 7, 11]), "every nucleus token gets drawn");
});

Deno.test("sampleToken frequencies follow the distribution (temperature applied)", async () => {
  const gpu = await testGpu();
  const p = [0.05, 0.15, 0.3, 0.5], T = 2, B = 2000;
  // Logits log(p)·T at temperature T give back p.
  const ids = await sampleOnGpu(gpu, repeatRows(p.map((x) => Math.log(x) * T), B), B, p.length, {
    temperature: T,
    topK: 0,
    topP: 1,
    seed: 2024,
    step: 11,
  });
  p.forEach((pi, i) => {
    const freq = ids.filter((id) => id === i).length / B;
    const sigma = Math.sqrt((pi * (1 - pi)) / B);
    assert.ok(Math.abs(freq - pi) < 5 * sigma, `token ${i}: frequency ${freq} vs probability ${pi}`);
  });
});

Deno.test("sampleToken is reproducible per seed and step, and changes with them", async () => {
  const gpu = await testGpu();
  const B = 64, V = 500;
  const logits = randomF32(B * V, 5, -1, 1); // flat-ish: many plausible tokens per row
  const o = { temperature: 1, topK: 0, topP: 0.95, seed: 123, step: 4 };
  const a = await sampleOnGpu(gpu, logits, B, V, o);
  assert.deepEqual(await sampleOnGpu(gpu, logits, B, V, o), a);
  const differing = (x: Int32Array) => x.filter((id, i) => id !== a[i]).length;
  assert.ok(differing(await sampleOnGpu(gpu, logits, B, V, { ...o, seed: 124 })) > B / 2);
  assert.ok(differing(await sampleOnGpu(gpu, logits, B, V, { ...o, step: 5 })) > B / 2);
});

Deno.test("sampleToken with per-row seeds: each row draws what it draws alone with its seed at its step", async () => {
  const gpu = await testGpu();
  const B = 5, V = 1237;
  const logits = randomF32(B * V, 77, -1, 1); // flat-ish: the seed decides
  const seeds = [7, 4294967295, 7, 0, 31];
  const offsets = [0, 0, 9, 2, 4294967292]; // steps made before joining (the last wraps like a u32)
  const o = { temperature: 0.9, topK: 60, topP: 0.9, seed: 1, step: 3 };
  const rowSeeds = gpu.uploadTensor(
    "seeds",
    "u32",
    [B, 2],
    Uint32Array.from(seeds.flatMap((s, b) => [s, offsets[b]])),
  );
  const g = gpu.uploadTensor("logits", "f32", [B, V], logits);
  const out = gpu.createTensor("ids", "i32", [B]);
  const r = gpu.recorder("test");
  sampleToken(r, g, out, { ...o, rowSeeds });
  r.submit();
  const batched = Array.from(await gpu.readI32(out));
  const alone: number[] = [];
  for (let b = 0; b < B; b++) {
    const step = (o.step + offsets[b]) % 2 ** 32;
    const [id] = await sampleOnGpu(gpu, logits.subarray(b * V, (b + 1) * V), 1, V, {
      ...o,
      seed: seeds[b],
      step,
    });
    alone.push(id);
  }
  assert.deepEqual(batched, alone);
  // And the seeds matter: the batch's shared seed would have drawn differently for most rows.
  const shared = Array.from(await sampleOnGpu(gpu, logits, B, V, o));
  assert.ok(shared.filter((id, b) => id !== batched[b]).length >= 3, `${shared} vs ${batched}`);
  assert.throws(
    () => sampleToken(gpu.recorder("t"), g, out, { ...o, rowSeeds: gpu.createTensor("s", "u32", [B]) }),
    /rowSeeds/,
  );
});

Deno.test("sampleToken rejects options HF would reject", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("x", "f32", [1, 4]);
  const ids = gpu.createTensor("ids", "i32", [1]);
  const ok = { temperature: 1, topK: 0, topP: 1, seed: 0, step: 0 };
  assert.throws(() => sampleToken(gpu.recorder("t"), x, ids, { ...ok, temperature: 0 }), /temperature 0/);
  assert.throws(() => sampleToken(gpu.recorder("t"), x, ids, { ...ok, topP: 0 }), /topP 0 must be in/);
  assert.throws(() => sampleToken(gpu.recorder("t"), x, ids, { ...ok, seed: -1 }), /seed -1/);
});
