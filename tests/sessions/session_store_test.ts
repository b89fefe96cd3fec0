import assert from "node:assert/strict";
import { CHUNK_BYTES } from "../../src/sessions/kv_chunks.ts";
import { isSessionIdShape, newSessionId } from "../../src/sessions/session_id.ts";
import { KeyedMutex } from "../../src/sessions/session_lock.ts";
import { imageLayoutOf, SessionStore } from "../../src/sessions/session_store.ts";
import { InputError } from "../../src/errors.ts";

const TTL = 3600;

Deno.test("Session ids carry 144 random bits and never repeat", () => {
  const ids = new Set(Array.from({ length: 1000 }, newSessionId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.ok(isSessionIdShape(id));
  assert.equal(isSessionIdShape("sess_short"), false);
});

Deno.test("A round appended to a session comes back with its images", async () => {
  const store = await SessionStore.open(":memory:", { ttlSeconds: TTL });
  const draft = store.draft();
  assert.equal(await store.get(draft.meta.id), null, "a draft is not saved");
  const image = crypto.getRandomValues(new Uint8Array(1000));
  const saved = await store.appendTurn(draft, ["q1", "a1"], { images: [image], maxNum: 4 });
  const second = await store.appendTurn(saved, ["q2", "a2"]);
  const got = await store.get(draft.meta.id);
  assert.deepEqual(got!.history, [["q1", "a1"], ["q2", "a2"]]);
  assert.deepEqual(got!.images, [image]);
  assert.equal(got!.meta.maxNum, 4);
  assert.equal(got!.versionstamp, second.versionstamp);
  assert.deepEqual((await store.get(draft.meta.id, { withImages: false }))!.images, []);
  store.close();
});

Deno.test("The first round's image layout is kept by later rounds; metas without it read as concat", async () => {
  const store = await SessionStore.open(":memory:", { ttlSeconds: TTL });
  const image = crypto.getRandomValues(new Uint8Array(100));
  const first = await store.appendTurn(store.draft(), ["q1", "a1"], {
    images: [image],
    maxNum: 4,
    imageLayout: "numbered",
  });
  await store.appendTurn(first, ["q2", "a2"]);
  const got = await store.get(first.meta.id);
  assert.equal(got!.meta.imageLayout, "numbered");
  assert.equal(imageLayoutOf(got!.meta), "numbered");

  const old = await store.appendTurn(store.draft(), ["q1", "a1"], { images: [image], maxNum: 4 });
  assert.equal("imageLayout" in old.meta, false, "no layout given: the meta keeps its old shape");
  assert.equal(imageLayoutOf((await store.get(old.meta.id))!.meta), "concat");
  store.close();
});

Deno.test("A stale versionstamp (another instance added a turn) gives a 409 and loses nothing", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const a = await SessionStore.open(path, { ttlSeconds: TTL });
  const b = await SessionStore.open(path, { ttlSeconds: TTL });
  const created = await a.create();
  const seenByA = await a.get(created.meta.id);
  const seenByB = await b.get(created.meta.id);
  await b.appendTurn(seenByB!, ["from b", "ok"]);
  await assert.rejects(
    a.appendTurn(seenByA!, ["from a", "late"]),
    (err: unknown) => err instanceof InputError && err.status === 409 && err.code === "session_conflict",
  );
  assert.deepEqual((await a.get(created.meta.id))!.history, [["from b", "ok"]]);
  a.close();
  b.close();
  await Deno.remove(path);
});

Deno.test("Sessions survive closing and reopening the KV file", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const first = await SessionStore.open(path, { ttlSeconds: TTL });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const s = await first.appendTurn(first.draft(), [`q${i}`, `a${i}`], {
      images: [new Uint8Array([i, 1, 2])],
      maxNum: 6,
    });
    ids.push(s.meta.id);
  }
  first.close();
  const reopened = await SessionStore.open(path, { ttlSeconds: TTL });
  for (const [i, id] of ids.entries()) {
    const s = await reopened.get(id);
    assert.deepEqual(s!.history, [[`q${i}`, `a${i}`]]);
    assert.deepEqual(s!.images, [new Uint8Array([i, 1, 2])]);
  }
  reopened.close();
  await Deno.remove(path);
});

Deno.test("Every KV value of a session with long turns and big images stays under 64 KiB", async () => {
  const store = await SessionStore.open(":memory:", { ttlSeconds: TTL });
  const big = crypto.getRandomValues(new Uint8Array(65536)).map((b) => b); // one chunk is not enough
  const images = [new Uint8Array(3_000_000).map((_, i) => i % 251), big, big];
  let s = await store.appendTurn(store.draft(), ["é".repeat(50_000), "ü".repeat(70_000)], {
    images,
    maxNum: 12,
  });
  for (let i = 0; i < 30; i++) {
    s = await store.appendTurn(s, [`question ${i} `.repeat(3000), `answer ${i} `.repeat(5000)]);
  }
  let entries = 0;
  for await (const entry of store.kv.list({ prefix: [] })) {
    entries++;
    const size = entry.value instanceof Uint8Array ? entry.value.length : JSON.stringify(entry.value).length;
    assert.ok(size <= CHUNK_BYTES && size < 65536, `${JSON.stringify(entry.key)} holds ${size} bytes`);
  }
  assert.ok(entries > 60);
  const got = await store.get(s.meta.id);
  assert.equal(got!.history.length, 31);
  assert.equal(got!.history[0][0], "é".repeat(50_000));
  assert.deepEqual(got!.images, images);
  assert.equal(got!.meta.imageRefs[1].sha256, got!.meta.imageRefs[2].sha256, "same bytes, same content key");
  store.close();
});

Deno.test("Sessions expire after the TTL without activity, and each round extends it", async () => {
  let now = 1_000_000;
  const store = await SessionStore.open(":memory:", { ttlSeconds: 100, now: () => now });
  let s = await store.appendTurn(store.draft(), ["q", "a"], { images: [new Uint8Array([1])], maxNum: 6 });
  now += 90_000;
  s = await store.appendTurn((await store.get(s.meta.id))!, ["q2", "a2"]);
  now += 90_000; // 180 s after creation, 90 s after the last round
  assert.equal((await store.get(s.meta.id))!.history.length, 2);
  now += 150_000; // past the data's first expiry: the next round rewrote it
  assert.equal(await store.get(s.meta.id), null, "100 s idle: gone");
  store.close();
});

Deno.test("A busy session refreshes the expiry of its turns and images", async () => {
  let now = 0;
  const store = await SessionStore.open(":memory:", { ttlSeconds: 100, now: () => now });
  let s = await store.appendTurn(store.draft(), ["q0", "a0"], { images: [new Uint8Array([9])], maxNum: 6 });
  for (let i = 1; i <= 5; i++) {
    now += 80_000;
    s = await store.appendTurn((await store.get(s.meta.id))!, [`q${i}`, `a${i}`]);
  }
  assert.ok(s.meta.dataExpiresAt - now >= 100_000, "data outlives the meta");
  assert.deepEqual((await store.get(s.meta.id))!.images, [new Uint8Array([9])]);
  store.close();
});

Deno.test("Deleting a session removes all of its keys", async () => {
  const store = await SessionStore.open(":memory:", { ttlSeconds: TTL });
  const s = await store.appendTurn(store.draft(), ["q", "a"], {
    images: [new Uint8Array(100_000)],
    maxNum: 6,
  });
  assert.equal(await store.delete(s.meta.id), true);
  assert.equal(await store.delete(s.meta.id), false);
  for await (const entry of store.kv.list({ prefix: [] })) {
    assert.fail(`left over: ${JSON.stringify(entry.key)}`);
  }
  store.close();
});

Deno.test("KeyedMutex runs jobs with one key one at a time, in order, and forgets idle keys", async () => {
  const mutex = new KeyedMutex();
  const log: string[] = [];
  let inside = 0;
  const job = (name: string) => async () => {
    inside++;
    assert.equal(inside, 1);
    await Promise.resolve();
    log.push(name);
    inside--;
  };
  await Promise.all([mutex.run("k", job("a")), mutex.run("k", job("b")), mutex.run("k", job("c"))]);
  assert.deepEqual(log, ["a", "b", "c"]);
  await assert.rejects(mutex.run("k", () => Promise.reject(new Error("boom"))));
  await mutex.run("k", job("d"));
  assert.equal(mutex.size, 0);
});
