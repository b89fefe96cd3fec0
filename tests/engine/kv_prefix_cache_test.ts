import assert from "node:assert/strict";
import { KvPrefixCache } from "../../src/engine/kv_prefix_cache.ts";
import type { LmRunner } from "../../src/model/lm_runner.ts";

/** Stands in for a GPU runner: only its size, capacity and destruction matter to the cache. */
function fakeRunner(bytes: number, capacity = 100) {
  const r = { cache: { bytes }, capacity, destroyed: false, destroy: () => r.destroyed = true };
  return r as unknown as LmRunner & { destroyed: boolean };
}

Deno.test("KvPrefixCache hands a kept conversation to its follow-up round only", () => {
  const cache = new KvPrefixCache(1000);
  const a = fakeRunner(100);
  cache.keep([1, 2, 3, 4, 5, 6], 4, "img A", a); // prompt [1,2,3,4], answer [5,6]
  // Same system prompt, other conversation: shares 2 tokens < the kept prompt's 4, so it is not reused.
  assert.equal(cache.take([1, 2, 9, 9, 9], "img A", 0, 10), null);
  // Needs more positions than the runner has: not reused.
  assert.equal(cache.take([1, 2, 3, 4, 5, 7], "img A", 0, 101), null);
  // Images up to position 6 must be covered: shared 5 < 6, not reused.
  assert.equal(cache.take([1, 2, 3, 4, 5, 7], "img A", 6, 10), null);
  // Same ids, other picture: the <IMG_CONTEXT> ids match but the cached embeddings are another image's.
  assert.equal(cache.take([1, 2, 3, 4, 5, 7, 8], "img B", 0, 10), null);
  const hit = cache.take([1, 2, 3, 4, 5, 7, 8], "img A", 0, 10);
  assert.equal(hit?.runner, a);
  assert.equal(hit?.shared, 5);
  assert.equal(cache.size, 0, "a taken runner belongs to the caller");
  assert.deepEqual([cache.hits, cache.misses], [1, 4]);
});

Deno.test("KvPrefixCache evicts the least recently kept conversations beyond its byte budget", () => {
  const cache = new KvPrefixCache(250);
  const [a, b, c] = [fakeRunner(100), fakeRunner(100), fakeRunner(100)];
  cache.keep([1, 1], 1, "", a);
  cache.keep([2, 2], 1, "", b);
  cache.keep([3, 3], 1, "", c);
  assert.equal(a.destroyed, true);
  assert.equal(b.destroyed || c.destroyed, false);
  assert.equal(cache.bytes, 200);
  const tooBig = fakeRunner(300);
  cache.keep([4], 1, "", tooBig);
  assert.equal(tooBig.destroyed, true, "a cache larger than the budget is not kept");
  const off = new KvPrefixCache(0);
  const d = fakeRunner(1);
  off.keep([5], 1, "", d);
  assert.equal(d.destroyed, true, "budget 0 turns reuse off");
  cache.clear();
  assert.equal(b.destroyed && c.destroyed, true);
});

Deno.test("KvPrefixCache lends the image block of a kept conversation to another about the same pictures", () => {
  const cache = new KvPrefixCache(250);
  const [a, b] = [fakeRunner(100), fakeRunner(100)];
  // Prompts [system 1, image 7 7 7, question …]: positions 0–3 are the system prompt and the image block.
  cache.keep([1, 7, 7, 7, 2, 3, 50, 51], 6, "img A", a); // prompt up to 3, answer 50, 51
  cache.keep([1, 7, 7, 7, 4, 5, 60], 6, "img B", b);
  const other = [1, 7, 7, 7, 8, 9, 9];
  // Another question: take (follow-ups only) finds nothing; borrow lends A's first 4 positions and keeps it.
  assert.equal(cache.take(other, "img A", 4, 10), null);
  assert.equal(cache.borrowableWith(other, "img A", 4), 4);
  const lent = cache.borrow(other, "img A", 4);
  assert.equal(lent?.runner, a);
  assert.equal(lent?.shared, 4);
  assert.equal(cache.size, 2);
  assert.equal(a.destroyed, false);
  // The image block must be covered (minShared), by a conversation about the same pictures.
  assert.equal(cache.borrow(other, "img A", 5), null);
  assert.equal(cache.borrow(other, "img C", 4), null);
  assert.equal(cache.borrowableWith([9, 9], "img A", 0), 0, "nothing shared is nothing lent");
  assert.equal(cache.borrowed, 1);
  // Lending marked A used: a third conversation evicts B, the least recently used.
  cache.keep([3, 3], 1, "", fakeRunner(100));
  assert.deepEqual([a.destroyed, b.destroyed], [false, true]);
  cache.clear();
});
