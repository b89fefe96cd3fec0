import assert from "node:assert/strict";
import { Scheduler } from "../../src/engine/scheduler.ts";
import { InputError } from "../../src/errors.ts";

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

Deno.test("Scheduler runs one job at a time in arrival order", async () => {
  const s = new Scheduler({ maxQueue: 4 });
  const order: number[] = [];
  const g = gate();
  const first = s.reserve().run(async () => {
    await g.opened;
    order.push(0);
  });
  const rest = [1, 2, 3].map((i) => s.reserve().run(() => Promise.resolve(order.push(i))));
  assert.equal(s.depth, 4);
  g.open();
  await Promise.all([first, ...rest]);
  assert.deepEqual(order, [0, 1, 2, 3]);
  assert.equal(s.depth, 0);
});

Deno.test("Scheduler refuses a ticket with a 503 once the queue is full, and frees released places", () => {
  const s = new Scheduler({ maxQueue: 2 });
  const a = s.reserve();
  s.reserve();
  s.reserve(); // one may run, two may wait
  assert.throws(
    () => s.reserve(),
    (err: unknown) => err instanceof InputError && err.status === 503 && err.code === "queue_full",
  );
  a.release();
  a.release(); // idempotent
  s.reserve();
  assert.equal(s.depth, 3);
});

Deno.test("Scheduler drops a waiting job whose signal aborts", async () => {
  const s = new Scheduler({ maxQueue: 4 });
  const g = gate();
  const running = s.reserve().run(() => g.opened);
  const abort = new AbortController();
  let ran = false;
  const waiting = s.reserve().run(() => Promise.resolve(ran = true), abort.signal);
  abort.abort(new DOMException("gone", "AbortError"));
  await assert.rejects(waiting, { name: "AbortError" });
  assert.equal(s.depth, 1);
  g.open();
  await running;
  assert.equal(ran, false);
});

Deno.test("A job that throws frees the engine for the next one", async () => {
  const s = new Scheduler({ maxQueue: 4 });
  await assert.rejects(s.reserve().run(() => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await s.reserve().run(() => Promise.resolve(7)), 7);
});

Deno.test("Scheduler hands maxRunning jobs to the engine at once, the rest in order as they finish", async () => {
  const s = new Scheduler({ maxQueue: 1, maxRunning: 2 });
  const gates = [gate(), gate(), gate()];
  const started: number[] = [];
  const jobs = gates.map((g, i) =>
    s.reserve().run(async () => {
      started.push(i);
      await g.opened;
    })
  );
  // Two running and one waiting fill maxQueue + maxRunning places.
  assert.throws(() => s.reserve(), (err: unknown) => err instanceof InputError && err.code === "queue_full");
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(started, [0, 1]);
  assert.equal(s.depth, 3);
  const settle = () => new Promise((r) => setTimeout(r, 0));
  await settle();
  assert.deepEqual(started, [0, 1], "a third job ran beside two");
  gates[1].open();
  await jobs[1];
  await settle();
  assert.deepEqual(started, [0, 1, 2], "the waiting job did not start when a place freed");
  gates[0].open();
  gates[2].open();
  await Promise.all(jobs);
  assert.equal(s.depth, 0);
});
