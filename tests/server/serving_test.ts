import assert from "node:assert/strict";
import type { ChatEngine, EngineStats } from "../../src/engine/types.ts";
import type { LoadEngineOptions } from "../../src/engine/load_engine.ts";
import { Scheduler } from "../../src/engine/scheduler.ts";
import { startServer } from "../../src/server/serve.ts";
import { defaultSettings } from "../../src/server/settings.ts";
import { FakeEngine } from "./fake_engine.ts";
import { makeTestApp, postJson } from "./test_app.ts";

Deno.test("/health is 503 while the model loads and 200 once it is ready; chat waits for it", async () => {
  let resolve!: (e: ChatEngine) => void;
  const loading = new Promise<ChatEngine>((r) => (resolve = r));
  const t = await makeTestApp({ loading });
  const before = await t.app.request("/health");
  assert.equal(before.status, 503);
  assert.equal((await before.json()).status, "loading");
  const early = await postJson(t.app, "/v1/chat", { question: "q" });
  assert.equal(early.status, 503);
  assert.equal((await early.json()).error.code, "model_loading");
  assert.ok(early.headers.get("retry-after"));
  resolve(t.engine);
  await loading;
  const after = await t.app.request("/health");
  assert.equal(after.status, 200);
  assert.equal((await after.json()).status, "ok");
  assert.equal((await postJson(t.app, "/v1/chat", { question: "q" })).status, 200);
  t.close();
});

Deno.test("A full queue answers 503 with Retry-After before reading the body", async () => {
  let open!: () => void;
  const held = new Promise<void>((r) => (open = r));
  const engine = new FakeEngine({ beforeToken: (i) => (i === 0 ? held : undefined) });
  const scheduler = new Scheduler({ maxQueue: 1 });
  const t = await makeTestApp({ engine, scheduler });
  const running = postJson(t.app, "/v1/chat", { question: "first" });
  const waiting = postJson(t.app, "/v1/chat", { question: "second" });
  // Wait (without sleeping) until both are admitted: one running, one waiting.
  while (scheduler.depth < 2 || engine.calls.length === 0) await new Promise((r) => setTimeout(r, 0));
  const refused = await t.app.request("/v1/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "not even JSON: the queue is checked first",
  });
  assert.equal(refused.status, 503);
  assert.ok(Number(refused.headers.get("retry-after")) >= 1);
  const { error } = await refused.json();
  assert.equal(error.code, "queue_full");
  assert.match(error.message, /QUEUE_SIZE=1/);
  open();
  assert.deepEqual([(await running).status, (await waiting).status], [200, 200]);
  t.close();
});

Deno.test("/metrics reports requests, errors, time to first token, tokens/s, queue depth and tiles", async () => {
  const t = await makeTestApp();
  const png = await Deno.readFile("tests/fixtures/tiny-internvl/goldens/images/square_big.png");
  await t.app.request("/v1/chat", {
    method: "POST",
    body: (() => {
      const f = new FormData();
      f.append("question", "tiles?");
      f.append("images", new Blob([png]));
      return f;
    })(),
  });
  await postJson(t.app, "/v1/chat", { question: "" });
  const text = await (await t.app.request("/metrics")).text();
  assert.match(text, /internvl_http_requests_total\{route="\/v1\/chat",method="POST",status="200"\} 1/);
  assert.match(text, /internvl_http_errors_total\{route="\/v1\/chat",code="invalid_value"\} 1/);
  assert.match(text, /internvl_time_to_first_token_seconds_count 1/);
  assert.match(text, /internvl_decode_tokens_per_second_count 1/);
  assert.match(text, /internvl_image_tiles_per_request_count 1/);
  assert.match(text, /internvl_queue_depth 0/);
  t.close();
});

Deno.test("/metrics shows the engine's own counters (batched rounds, KV reuse, early images, kept image embeddings) when it keeps them", async () => {
  const t = await makeTestApp();
  try {
    const before = await (await t.app.request("/metrics")).text();
    assert.doesNotMatch(before, /internvl_batched_rounds_total/, "an engine without stats shows none");
    const engine = t.engine as typeof t.engine & { stats: () => EngineStats };
    engine.stats = () => ({
      batchedRounds: 3,
      joins: 4,
      interleavedJoins: 6,
      keptHits: 2,
      keptMisses: 5,
      earlyImageHits: 1,
      keptPrefixCopies: 9,
      keptImageHits: 7,
      keptImageMisses: 8,
    });
    const text = await (await t.app.request("/metrics")).text();
    assert.match(text, /# TYPE internvl_batched_rounds_total counter\ninternvl_batched_rounds_total 3/);
    assert.match(text, /# TYPE internvl_batch_joins_total counter\ninternvl_batch_joins_total 4/);
    assert.match(text, /# TYPE internvl_interleaved_joins_total counter\ninternvl_interleaved_joins_total 6/);
    assert.match(text, /internvl_kv_reuse_hits_total 2/);
    assert.match(text, /internvl_kv_reuse_misses_total 5/);
    assert.match(text, /internvl_early_image_hits_total 1/);
    assert.match(text, /internvl_kv_prefix_copies_total 9/);
    assert.match(text, /internvl_image_cache_hits_total 7/);
    assert.match(text, /internvl_image_cache_misses_total 8/);
    assert.match(text, /# TYPE internvl_queue_depth gauge/);
  } finally {
    t.close();
  }
});

Deno.test("startServer listens before the model loads, says when weights are random, and keeps sessions across restarts", async () => {
  const kvPath = await Deno.makeTempFile({ suffix: ".kv" });
  const settings = defaultSettings({ port: 0, kvPath, visionScratchBytes: 12345 });
  const lines: string[] = [];
  let finish!: (e: ChatEngine) => void;
  let seen: LoadEngineOptions | undefined;
  const loader = (options: LoadEngineOptions) => {
    seen = options;
    return new Promise<ChatEngine>((r) => (finish = r));
  };
  const first = await startServer(settings, loader, (l) => lines.push(l));
  const base = `http://127.0.0.1:${first.server.addr.port}`;
  assert.equal((await fetch(`${base}/health`).then((r) => r.body?.cancel().then(() => r) ?? r)).status, 503);
  assert.ok(lines.some((l) => /RANDOM-WEIGHT test model/.test(l)));
  assert.equal(seen!.modelDir, "tests/fixtures/tiny-internvl/model");
  assert.equal(seen!.randomWeights, true);
  assert.equal(seen!.visionScratchBytes, 12345);
  finish(new FakeEngine({ randomWeights: true }));
  await first.loaded;
  const models = await (await fetch(`${base}/v1/models`)).json();
  assert.equal(models.data[0].random_weights, true);
  assert.match(models.data[0].description, /RANDOM WEIGHTS/);
  const chat = await (await fetch(`${base}/v1/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ question: "remember me" }),
  })).json();
  await first.close();

  const second = await startServer(settings, () => Promise.resolve(new FakeEngine()), () => {});
  await second.loaded;
  const history =
    await (await fetch(`http://127.0.0.1:${second.server.addr.port}/v1/sessions/${chat.session_id}`)).json();
  assert.equal(history.history[0].question, "remember me");
  await second.close();
  await Deno.remove(kvPath);
});

Deno.test("startServer reports a failed load on /health instead of crashing", async () => {
  const settings = defaultSettings({ port: 0, kvPath: ":memory:" });
  const running = await startServer(settings, () => Promise.reject(new Error("no GPU adapter")), () => {});
  await running.loaded;
  const res = await fetch(`http://127.0.0.1:${running.server.addr.port}/health`);
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { status: "failed", error: "no GPU adapter" });
  await running.close();
});

Deno.test("an engine fault (e.g. a lost GPU) turns /health and every request into a 503 naming it", async () => {
  const t = await makeTestApp();
  try {
    assert.equal((await t.app.request("/health")).status, 200);
    t.engine.fault = "GPU device lost (unknown): test";
    const health = await t.app.request("/health");
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: "failed", error: "GPU device lost (unknown): test" });
    const res = await postJson(t.app, "/v1/chat", { question: "hi" });
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.error.code, "engine_failed");
    assert.match(body.error.message, /GPU device lost \(unknown\): test; restart the server/);
  } finally {
    t.close();
  }
});
