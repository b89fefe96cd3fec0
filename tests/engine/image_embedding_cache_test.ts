import assert from "node:assert/strict";
import { ImageEmbeddingCache } from "../../src/engine/image_embedding_cache.ts";
import { Gpu } from "../../src/gpu/device.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";

const gpu = await Gpu.create();
globalThis.addEventListener("unload", () => gpu.destroy());

/** Embeddings of `rows` rows of 37 random values (odd width: no row is a whole number of 16-byte words). */
function randomEmbeds(rows: number): { tensor: Tensor; values: Float32Array } {
  const values = Float32Array.from({ length: rows * 37 }, () => Math.random() * 8 - 4);
  return { tensor: gpu.uploadTensor("test.embeds", "f32", [rows, 37], values), values };
}

const bytesOf = (rows: number) => rows * 37 * 4;

Deno.test("ImageEmbeddingCache keeps a copy and hands out copies the caller owns", async () => {
  const cache = new ImageEmbeddingCache(gpu, bytesOf(100));
  const a = randomEmbeds(11);
  cache.keep("A", a.tensor);
  // The caller's tensor is its own: destroying it leaves the kept copy whole.
  a.tensor.buffer.destroy();
  assert.equal(cache.take("B"), null);
  const first = cache.take("A");
  assert.ok(first);
  assert.deepEqual(first.shape, [11, 37]);
  assert.deepEqual(await gpu.readF32(first), a.values);
  // A second take is another copy: the first one's owner may destroy or overwrite it.
  gpu.writeTensor(first, new Float32Array(11 * 37).fill(7));
  const second = cache.take("A");
  assert.ok(second && second.buffer !== first.buffer);
  first.buffer.destroy();
  assert.deepEqual(await gpu.readF32(second), a.values);
  second.buffer.destroy();
  assert.deepEqual([cache.hits, cache.misses], [2, 1]);
  assert.deepEqual([cache.size, cache.bytes], [1, bytesOf(11)]);
  // Keeping a key again replaces its embeddings.
  const b = randomEmbeds(5);
  cache.keep("A", b.tensor);
  b.tensor.buffer.destroy();
  const third = cache.take("A")!;
  assert.deepEqual(await gpu.readF32(third), b.values);
  third.buffer.destroy();
  assert.deepEqual([cache.size, cache.bytes], [1, bytesOf(5)]);
  cache.clear();
  assert.deepEqual([cache.size, cache.bytes], [0, 0]);
});

Deno.test("ImageEmbeddingCache evicts the least recently used beyond its budget, keeps nothing it cannot hold", async () => {
  const cache = new ImageEmbeddingCache(gpu, bytesOf(30));
  const made = new Map<string, Float32Array>();
  const keep = (key: string, rows: number) => {
    const e = randomEmbeds(rows);
    made.set(key, e.values);
    cache.keep(key, e.tensor);
    e.tensor.buffer.destroy();
  };
  keep("A", 10);
  keep("B", 10);
  keep("C", 9);
  // A used last: B is now the least recently used, and goes first.
  cache.take("A")!.buffer.destroy();
  keep("D", 2);
  assert.deepEqual(["A", "B", "C", "D"].map((k) => cache.has(k)), [true, false, true, true]);
  assert.equal(cache.bytes, bytesOf(21));
  // Larger than the whole budget: not kept, and nothing evicted for it.
  keep("E", 31);
  assert.equal(cache.has("E"), false);
  assert.equal(cache.size, 3);
  // What is left is what was kept for each key.
  for (const key of ["A", "C", "D"]) {
    const t = cache.take(key)!;
    assert.deepEqual(await gpu.readF32(t), made.get(key), key);
    t.buffer.destroy();
  }
  // Requests without images (key "") and a cache turned off keep nothing.
  keep("", 1);
  assert.equal(cache.has(""), false);
  const off = new ImageEmbeddingCache(gpu, 0);
  const e = randomEmbeds(1);
  off.keep("A", e.tensor);
  e.tensor.buffer.destroy();
  assert.deepEqual([off.size, off.take("A"), off.misses], [0, null, 1]);
  assert.throws(() => new ImageEmbeddingCache(gpu, -1), /budget -1/);
  cache.clear();
});
