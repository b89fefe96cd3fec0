import assert from "node:assert/strict";
import { retryWhileLocked } from "../../src/sessions/kv_busy_retry.ts";

/** A write that throws `errors` in turn, then returns "done"; counts its calls. */
function flaky(errors: Error[]) {
  let calls = 0;
  return {
    write: () => {
      calls++;
      const e = errors.shift();
      return e ? Promise.reject(e) : Promise.resolve("done");
    },
    calls: () => calls,
  };
}

const locked = () => new TypeError("database is locked");

Deno.test("retryWhileLocked runs a write again while SQLite reports the file locked", async () => {
  const w = flaky([locked(), locked()]);
  assert.equal(await retryWhileLocked(w.write, { firstWaitMs: 1 }), "done");
  assert.equal(w.calls(), 3);
});

Deno.test("retryWhileLocked passes any other error through at once, and gives up after its attempts", async () => {
  const other = flaky([new TypeError("value too large")]);
  await assert.rejects(retryWhileLocked(other.write, { firstWaitMs: 1 }), /value too large/);
  assert.equal(other.calls(), 1);
  const stuck = flaky(Array.from({ length: 10 }, locked));
  await assert.rejects(retryWhileLocked(stuck.write, { attempts: 4, firstWaitMs: 1 }), /database is locked/);
  assert.equal(stuck.calls(), 4);
});
