import assert from "node:assert/strict";
import { defaultGenerationConfig } from "../../src/engine/types.ts";
import { fakeAnswer, FakeEngine } from "../server/fake_engine.ts";
import {
  dataUrl,
  JPEG_PATH,
  makeTestApp,
  PNG_PATH,
  postJson,
  readSse,
  toBase64,
} from "../server/test_app.ts";

const png = await Deno.readFile(PNG_PATH);
const jpeg = await Deno.readFile(JPEG_PATH);

Deno.test("POST /v1/chat answers, creates a session and reports usage", async () => {
  const t = await makeTestApp();
  const res = await postJson(t.app, "/v1/chat", { question: "What is this?", images: [dataUrl(png)] });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.response, fakeAnswer("What is this?", 1, [png], 6, defaultGenerationConfig));
  assert.match(body.session_id, /^sess_[A-Za-z0-9_-]{24}$/);
  assert.ok(body.usage.prompt_tokens > 256 && body.usage.completion_tokens > 0);
  assert.equal(t.engine.calls[0].maxNum, 6);
  t.close();
});

Deno.test("A later round takes history and first-round images from the store", async () => {
  const t = await makeTestApp();
  const first =
    await (await postJson(t.app, "/v1/chat", { question: "Describe", images: [toBase64(jpeg)], max_num: 3 }))
      .json();
  const second = await postJson(t.app, "/v1/chat", {
    question: "And the colour?",
    session_id: first.session_id,
  });
  assert.equal(second.status, 200);
  const call = t.engine.calls[1];
  assert.deepEqual(call.history, [["Describe", first.response]]);
  assert.deepEqual(call.images, [jpeg]);
  assert.equal(call.maxNum, 3, "later rounds tile the images like the first round");
  const history = await (await t.app.request(`/v1/sessions/${first.session_id}`)).json();
  assert.equal(history.history.length, 2);
  assert.equal(history.images.length, 1);
  t.close();
});

Deno.test("Images sent in a later round of a session are refused with a 400 that explains why", async () => {
  const t = await makeTestApp();
  const first = await (await postJson(t.app, "/v1/chat", { question: "Hi" })).json();
  const res = await postJson(t.app, "/v1/chat", {
    question: "Now this",
    session_id: first.session_id,
    images: [dataUrl(png)],
  });
  assert.equal(res.status, 400);
  const { error } = await res.json();
  assert.equal(error.param, "images");
  assert.equal(error.code, "images_after_first_round");
  assert.match(error.message, /only be sent in the first round/);
  t.close();
});

Deno.test("Sessions: create, first round with images, read history, delete", async () => {
  const t = await makeTestApp();
  const created = await t.app.request("/v1/sessions", { method: "POST" });
  assert.equal(created.status, 201);
  const { id } = await created.json();
  const round = await postJson(t.app, "/v1/chat", {
    question: "Look",
    session_id: id,
    images: [dataUrl(png)],
  });
  assert.equal(round.status, 200, await round.clone().text());
  assert.equal((await round.json()).session_id, id);
  const got = await (await t.app.request(`/v1/sessions/${id}`)).json();
  assert.equal(got.history[0].question, "Look");
  assert.equal(got.max_num, 6);
  assert.equal((await t.app.request(`/v1/sessions/${id}`, { method: "DELETE" })).status, 200);
  assert.equal((await t.app.request(`/v1/sessions/${id}`)).status, 404);
  t.close();
});

Deno.test("Multipart form with image files gives the same answer as JSON", async () => {
  const t = await makeTestApp();
  const form = new FormData();
  form.append("question", "Two pictures");
  form.append("images", new Blob([png], { type: "image/png" }), "a.png");
  form.append("images", new Blob([jpeg], { type: "image/jpeg" }), "b.jpg");
  form.append("max_num", "2");
  form.append("max_new_tokens", "5");
  const res = await t.app.request("/v1/chat", { method: "POST", body: form });
  assert.equal(res.status, 200, await res.clone().text());
  const json = await (await postJson(t.app, "/v1/chat", {
    question: "Two pictures",
    images: [dataUrl(png), dataUrl(jpeg, "image/jpeg")],
    max_num: 2,
    max_new_tokens: 5,
  })).json();
  const body = await res.json();
  assert.equal(body.response, json.response);
  assert.equal(body.usage.completion_tokens, 5);
  t.close();
});

Deno.test("Generation fields reach the engine in camelCase", async () => {
  const t = await makeTestApp();
  const res = await postJson(t.app, "/v1/chat", {
    question: "q",
    max_new_tokens: 7,
    do_sample: true,
    temperature: 0.7,
    top_p: 0.9,
    top_k: 20,
    repetition_penalty: 1.1,
    num_beams: 2,
    seed: 42,
  });
  assert.equal(res.status, 200);
  assert.deepEqual(t.engine.calls[0].generation, {
    maxNewTokens: 7,
    doSample: true,
    temperature: 0.7,
    topP: 0.9,
    topK: 20,
    repetitionPenalty: 1.1,
    numBeams: 2,
    seed: 42,
  });
  t.close();
});

Deno.test("stream: true sends delta events then a done event with the session", async () => {
  const t = await makeTestApp();
  const res = await postJson(t.app, "/v1/chat", { question: "Stream me", stream: true });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /text\/event-stream/);
  const events = await readSse(res);
  const deltas = events.filter((e) => e.event === "delta").map((e) => JSON.parse(e.data).text);
  const done = JSON.parse(events.find((e) => e.event === "done")!.data);
  assert.ok(deltas.length > 3);
  assert.equal(deltas.join(""), done.response);
  assert.equal((await t.sessions.get(done.session_id))!.history.length, 1);
  t.close();
});

Deno.test("A streamed request with a corrupt image fails with a plain 400 before streaming", async () => {
  const t = await makeTestApp();
  const res = await postJson(t.app, "/v1/chat", {
    question: "q",
    stream: true,
    images: [toBase64(png.slice(0, 500))],
  });
  assert.equal(res.status, 400);
  const { error } = await res.json();
  assert.equal(error.code, "invalid_image");
  t.close();
});

Deno.test("A failure after streaming started arrives as an error event", async () => {
  const t = await makeTestApp({ engine: new FakeEngine({ failAfterTokens: 2 }) });
  const res = await postJson(t.app, "/v1/chat", { question: "q r s t", stream: true });
  assert.equal(res.status, 200);
  const events = await readSse(res);
  assert.equal(events.filter((e) => e.event === "delta").length, 2);
  const error = JSON.parse(events.at(-1)!.data).error;
  assert.equal(events.at(-1)!.event, "error");
  assert.equal(error.type, "server_error");
  assert.match(error.message, /device loss/);
  t.close();
});

Deno.test("Aborting the request stops generation and saves no turn", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const engine = new FakeEngine({ beforeToken: (i) => (i === 3 ? held : undefined) });
  const t = await makeTestApp({ engine });
  const session = await t.sessions.create();
  const abort = new AbortController();
  const res = await t.app.request("/v1/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ question: "long answer", session_id: session.meta.id, stream: true }),
    signal: abort.signal,
  });
  const reader = res.body!.getReader();
  await reader.read(); // the first delta is out
  abort.abort();
  release();
  await reader.cancel().catch(() => {});
  // The engine sees the abort at its next token; wait for the locked round to finish.
  await t.app.request(`/v1/sessions/${session.meta.id}`);
  await postJson(t.app, "/v1/chat", { question: "after", session_id: session.meta.id });
  assert.equal(engine.aborted, 1);
  const stored = await t.sessions.get(session.meta.id);
  assert.deepEqual(stored!.history.map(([q]) => q), ["after"], "the aborted round left no turn");
  t.close();
});

Deno.test("A queued request's images are prepared while an earlier request holds the engine", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let secondPrepared!: () => void;
  const prepared = new Promise<void>((r) => (secondPrepared = r));
  const engine = new FakeEngine({
    beforeToken: (i, req) => (req.question === "first" && i === 1 ? held : undefined),
    onPrepare: (p) => p.maxNum === 3 && secondPrepared(),
  });
  const t = await makeTestApp({ engine });
  const first = postJson(t.app, "/v1/chat", { question: "first", images: [dataUrl(png)] });
  const second = postJson(t.app, "/v1/chat", { question: "second", images: [dataUrl(jpeg)], max_num: 3 });
  await prepared;
  assert.ok(engine.calls.every((c) => c.question === "first"), "prepared before its own chat began");
  release();
  assert.deepEqual([(await first).status, (await second).status], [200, 200]);
  assert.equal(engine.prepared.length, 2);
  const [p1, p2] = engine.prepared;
  assert.equal(p2.images, engine.calls[1].images, "chat gets the very array that was prepared");
  assert.deepEqual([p2.maxNum, p2.param], [3, "images"]);
  assert.ok(p1.dropped && p2.dropped, "each request drops its preparation when it ends");
  t.close();
});

Deno.test("Only a session's first round prepares images early; batch items are prepared under their own names", async () => {
  const t = await makeTestApp();
  const first = await (await postJson(t.app, "/v1/chat", { question: "Describe", images: [dataUrl(png)] }))
    .json();
  await postJson(t.app, "/v1/chat", { question: "And now?", session_id: first.session_id });
  assert.equal(t.engine.prepared.length, 1, "the later round did not prepare its stored images");
  await postJson(t.app, "/v1/batch_chat", {
    items: [{ question: "a", images: [dataUrl(png)] }, {
      question: "b",
      images: [dataUrl(jpeg), dataUrl(png)],
    }],
    max_num: 2,
  });
  assert.deepEqual(t.engine.prepared.slice(1).map((p) => [p.param, p.images.length, p.maxNum, p.dropped]), [
    ["items[0].images", 1, 2, true],
    ["items[1].images", 2, 2, true],
  ]);
  t.close();
});

Deno.test("batch_chat answers each item as it would be answered alone", async () => {
  const t = await makeTestApp();
  const items = [{ question: "first", images: [dataUrl(png)] }, { question: "second" }, {
    question: "third",
    images: [dataUrl(jpeg, "image/jpeg"), dataUrl(png)],
  }];
  const res = await postJson(t.app, "/v1/batch_chat", { items, max_new_tokens: 9 });
  assert.equal(res.status, 200);
  const { responses } = await res.json();
  for (const [i, item] of items.entries()) {
    const alone = await (await postJson(t.app, "/v1/chat", { ...item, max_new_tokens: 9 })).json();
    assert.equal(responses[i], alone.response);
  }
  t.close();
});

Deno.test("20 concurrent rounds on one session keep all 20 turns in order of completion", async () => {
  const t = await makeTestApp();
  const { meta } = await t.sessions.create();
  const answers = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) => postJson(t.app, "/v1/chat", { question: `q${i}`, session_id: meta.id }),
    ),
  );
  assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200));
  const stored = await t.sessions.get(meta.id);
  assert.equal(stored!.history.length, 20);
  assert.deepEqual(
    new Set(stored!.history.map(([q]) => q)),
    new Set(Array.from({ length: 20 }, (_, i) => `q${i}`)),
  );
  // Every round saw all earlier rounds: the k-th engine call had k turns of history.
  assert.deepEqual(t.engine.calls.map((c) => c.history.length), Array.from({ length: 20 }, (_, k) => k));
  t.close();
});

Deno.test("image_layout reaches the engine, is kept for later rounds and shown with the session", async () => {
  const t = await makeTestApp();
  const first = await postJson(t.app, "/v1/chat", {
    question: "Compare",
    images: [dataUrl(png), dataUrl(jpeg, "image/jpeg")],
    image_layout: "numbered",
  });
  assert.equal(first.status, 200, await first.clone().text());
  const { session_id } = await first.json();
  const second = await postJson(t.app, "/v1/chat", { question: "And now?", session_id });
  assert.equal(second.status, 200);
  const third = await postJson(t.app, "/v1/chat", {
    question: "Again",
    session_id,
    image_layout: "numbered",
  });
  assert.equal(third.status, 200, "repeating the stored layout is fine");
  assert.deepEqual(t.engine.calls.map((c) => c.imageLayout), ["numbered", "numbered", "numbered"]);
  const got = await (await t.app.request(`/v1/sessions/${session_id}`)).json();
  assert.equal(got.image_layout, "numbered");

  const plain = await (await postJson(t.app, "/v1/chat", { question: "Hi", images: [dataUrl(png)] })).json();
  assert.equal(t.engine.calls[3].imageLayout, "concat", "the default is the reference chat() layout");
  const plainSession = await (await t.app.request(`/v1/sessions/${plain.session_id}`)).json();
  assert.equal(plainSession.image_layout, "concat");
  t.close();
});

Deno.test("A later round with another image_layout than the session's first round is a 400 naming the field", async () => {
  const t = await makeTestApp();
  const { session_id } =
    await (await postJson(t.app, "/v1/chat", { question: "Look", images: [dataUrl(png)] })).json();
  for (const stream of [false, true]) {
    const res = await postJson(t.app, "/v1/chat", {
      question: "Numbered now?",
      session_id,
      image_layout: "numbered",
      stream,
    });
    assert.equal(res.status, 400);
    const { error } = await res.json();
    assert.equal(error.param, "image_layout");
    assert.equal(error.code, "image_layout_mismatch");
    assert.match(error.message, /Field 'image_layout' is "numbered" but session .* started with "concat"/);
  }
  assert.equal(t.engine.calls.length, 1, "the refused rounds never reached the engine");
  const got = await (await t.app.request(`/v1/sessions/${session_id}`)).json();
  assert.equal(got.history.length, 1);
  t.close();
});

Deno.test("A session created empty takes image_layout at its first round; multipart sends it as text", async () => {
  const t = await makeTestApp();
  const { id } = await (await t.app.request("/v1/sessions", { method: "POST" })).json();
  assert.equal((await (await t.app.request(`/v1/sessions/${id}`)).json()).image_layout, null);
  const form = new FormData();
  form.append("question", "Two pictures");
  form.append("session_id", id);
  form.append("images", new Blob([png], { type: "image/png" }), "a.png");
  form.append("images", new Blob([jpeg], { type: "image/jpeg" }), "b.jpg");
  form.append("image_layout", "numbered");
  const res = await t.app.request("/v1/chat", { method: "POST", body: form });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(t.engine.calls[0].imageLayout, "numbered");
  assert.equal((await (await t.app.request(`/v1/sessions/${id}`)).json()).image_layout, "numbered");
  t.close();
});

Deno.test("A session saved before image_layout existed continues as concat", async () => {
  const t = await makeTestApp();
  const { session_id } =
    await (await postJson(t.app, "/v1/chat", { question: "Look", images: [dataUrl(png)] })).json();
  // Rewrite the meta as an older server stored it: no imageLayout key.
  const entry = await t.sessions.kv.get<Record<string, unknown>>(["sessions", session_id]);
  const { imageLayout: _dropped, ...old } = entry.value!;
  assert.equal(_dropped, "concat");
  await t.sessions.kv.set(["sessions", session_id], old);

  assert.equal((await (await t.app.request(`/v1/sessions/${session_id}`)).json()).image_layout, "concat");
  const next = await postJson(t.app, "/v1/chat", { question: "More", session_id, image_layout: "concat" });
  assert.equal(next.status, 200, await next.clone().text());
  assert.equal(t.engine.calls[1].imageLayout, "concat");
  const refused = await postJson(t.app, "/v1/chat", {
    question: "More",
    session_id,
    image_layout: "numbered",
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.param, "image_layout");
  t.close();
});

Deno.test("/v1/chat/completions takes image_layout as an extension field, concat by default", async () => {
  const t = await makeTestApp();
  const ask = (extra: Record<string, unknown>) =>
    postJson(t.app, "/v1/chat/completions", {
      model: "internvl-fake",
      messages: [{
        role: "user",
        content: [
          { type: "image_url", image_url: { url: dataUrl(png) } },
          { type: "image_url", image_url: { url: dataUrl(jpeg, "image/jpeg") } },
          { type: "text", text: "Compare" },
        ],
      }],
      ...extra,
    });
  assert.equal((await ask({ image_layout: "numbered" })).status, 200);
  assert.equal((await ask({})).status, 200);
  assert.deepEqual(t.engine.calls.map((c) => c.imageLayout), ["numbered", "concat"]);
  t.close();
});
