/** The official openai client against a real server on loopback, with the fake engine. */
import assert from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import { defaultGenerationConfig } from "../../src/engine/types.ts";
import { FAKE_MODEL_ID, fakeAnswer, FakeEngine } from "../server/fake_engine.ts";
import { dataUrl, makeTestApp, PNG_PATH, type TestApp } from "../server/test_app.ts";

const png = await Deno.readFile(PNG_PATH);
const KEY = "sk-test";

async function serve(
  engine?: FakeEngine,
): Promise<{ t: TestApp; client: OpenAI; stop: () => Promise<void> }> {
  const t = await makeTestApp({ settings: { apiKey: KEY }, engine });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  const client = new OpenAI({
    apiKey: KEY,
    baseURL: `http://127.0.0.1:${server.addr.port}/v1`,
    maxRetries: 0,
  });
  return {
    t,
    client,
    stop: async () => {
      await server.shutdown();
      t.close();
    },
  };
}

Deno.test("openai client: plain completion with an image, and the model list", async () => {
  const { t, client, stop } = await serve();
  const models = await client.models.list();
  assert.equal(models.data[0].id, FAKE_MODEL_ID);
  const completion = await client.chat.completions.create({
    model: FAKE_MODEL_ID,
    messages: [
      { role: "system", content: "ignored" },
      {
        role: "user",
        content: [{ type: "image_url", image_url: { url: dataUrl(png) } }, { type: "text", text: "What?" }],
      },
    ],
  });
  const expected = fakeAnswer("What?", 1, [png], 6, defaultGenerationConfig);
  assert.equal(completion.choices[0].message.content, expected);
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.equal(
    completion.usage!.total_tokens,
    completion.usage!.prompt_tokens + completion.usage!.completion_tokens,
  );
  assert.deepEqual(t.engine.calls[0].images, [png]);
  await stop();
});

Deno.test("openai client: messages map to history pairs; temperature > 0 turns sampling on", async () => {
  const { t, client, stop } = await serve();
  await client.chat.completions.create({
    model: FAKE_MODEL_ID,
    temperature: 0.5,
    seed: 7,
    max_tokens: 4,
    messages: [
      { role: "user", content: "one" },
      { role: "assistant", content: "first answer" },
      { role: "user", content: "two" },
    ],
  });
  const call = t.engine.calls[0];
  assert.deepEqual(call.history, [["one", "first answer"]]);
  assert.equal(call.question, "two");
  assert.equal(call.generation.doSample, true);
  assert.equal(call.generation.temperature, 0.5);
  assert.equal(call.generation.seed, 7);
  assert.equal(call.generation.maxNewTokens, 4);
  await stop();
});

Deno.test("openai client: streamed completion with include_usage", async () => {
  const { client, stop } = await serve();
  const stream = await client.chat.completions.create({
    model: FAKE_MODEL_ID,
    messages: [{ role: "user", content: "Stream please" }],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 3,
  });
  let text = "";
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "Round 1 answer ");
  assert.equal(finish, "length");
  assert.equal(usage!.completion_tokens, 3);
  await stop();
});

Deno.test("openai client: mistakes arrive as APIError with status, code and param", async () => {
  const { client, stop } = await serve();
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }),
    (err: unknown) =>
      err instanceof APIError && err.status === 404 && err.code === "model_not_found" &&
      err.param === "model",
  );
  await assert.rejects(
    client.chat.completions.create({
      model: FAKE_MODEL_ID,
      messages: [{ role: "user", content: "x" }],
      top_p: 2,
    }),
    (err: unknown) =>
      err instanceof APIError && err.status === 400 && err.param === "top_p" && /at most 1/.test(err.message),
  );
  const wrongKey = new OpenAI({ apiKey: "bad", baseURL: client.baseURL, maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError);
  await assert.rejects(
    client.chat.completions.create({
      model: FAKE_MODEL_ID,
      stream: true,
      messages: [{
        role: "user",
        content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }, {
          type: "text",
          text: "q",
        }],
      }],
    }),
    (err: unknown) => err instanceof APIError && err.status === 400 && err.code === "invalid_image",
  );
  await stop();
});

Deno.test("openai client: an error after streaming began is raised as APIError from the stream", async () => {
  const { client, stop } = await serve(new FakeEngine({ failAfterTokens: 2 }));
  const stream = await client.chat.completions.create({
    model: FAKE_MODEL_ID,
    messages: [{ role: "user", content: "a b c d" }],
    stream: true,
  });
  const pieces: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta.content ?? "");
    })(),
    (err: unknown) => err instanceof APIError && /device loss/.test(err.message),
  );
  assert.equal(pieces.join(""), "Round 1 ");
  await stop();
});

Deno.test("A client that disconnects mid-stream stops its generation on the server", async () => {
  let aborted!: () => void;
  const sawAbort = new Promise<void>((r) => (aborted = r));
  const engine = new FakeEngine({
    // Hold the third token until the request's signal aborts, as a slow GPU would.
    beforeToken: (i, req) =>
      i === 2
        ? new Promise<void>((resolve) => req.signal!.addEventListener("abort", () => (aborted(), resolve())))
        : undefined,
  });
  const { client, stop } = await serve(engine);
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: FAKE_MODEL_ID, messages: [{ role: "user", content: "long" }], stream: true },
    { signal: controller.signal },
  );
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) break; // leaving the loop closes the connection
  }
  controller.abort();
  await sawAbort;
  await stop();
  assert.equal(engine.aborted, 1);
});
