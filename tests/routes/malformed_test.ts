/**
 * Every client mistake is a 4xx in the one error shape, naming the field and saying what to do, and the
 * server still answers a good request afterwards.
 */
import assert from "node:assert/strict";
import { dataUrl, makeTestApp, PNG_PATH, pngHeaderOnly, toBase64 } from "../server/test_app.ts";

const png = await Deno.readFile(PNG_PATH);
const bigPng = await Deno.readFile("tests/fixtures/tiny-internvl/goldens/images/square_big.png");
const KEY = "test-key-123";
const AUTH = { authorization: `Bearer ${KEY}` };
const SESSION_LIKE = "sess_AAAAAAAAAAAAAAAAAAAAAAAA";

interface Case {
  name: string;
  path?: string;
  method?: string;
  /** Object → JSON; string → raw JSON text; FormData as is. */
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  param?: string | null;
  code?: string;
  message: RegExp;
}

const chat = (extra: Record<string, unknown>) => ({ question: "What is it?", ...extra });
const msgs = (messages: unknown, extra: Record<string, unknown> = {}) => ({
  model: "internvl-fake",
  messages,
  ...extra,
});

function form(fields: Record<string, string | Uint8Array>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    f.append(k, typeof v === "string" ? v : new Blob([v as Uint8Array<ArrayBuffer>]));
  }
  return f;
}

const cases: Case[] = [
  // Body and content type
  { name: "invalid JSON", body: "{question:", status: 400, code: "invalid_json", message: /not valid JSON/ },
  { name: "empty body", body: "", status: 400, code: "invalid_json", message: /empty/ },
  {
    name: "JSON array body",
    body: "[1,2]",
    status: 400,
    param: null,
    message: /Request body must be an object; got an array/,
  },
  { name: "JSON null body", body: "null", status: 400, param: null, message: /got null/ },
  {
    name: "text/plain",
    body: "hello",
    headers: { "content-type": "text/plain" },
    status: 415,
    message: /"text\/plain" is not supported/,
  },
  {
    name: "no content type",
    body: new TextEncoder().encode("{}"),
    headers: { "content-type": "" },
    status: 415,
    message: /Content-Type header is missing/,
  },
  {
    name: "body over MAX_BODY_BYTES",
    body: chat({ images: ["A".repeat(2_200_000)] }),
    status: 413,
    code: "body_too_large",
    message: /larger than 2000000 bytes/,
  },
  // question
  { name: "missing question", body: {}, status: 400, param: "question", message: /'question' is required/ },
  {
    name: "question is a number",
    body: { question: 5 },
    status: 400,
    param: "question",
    message: /must be a string; got a number 5/,
  },
  {
    name: "empty question",
    body: { question: "" },
    status: 400,
    param: "question",
    message: /must not be empty/,
  },
  {
    name: "blank question",
    body: { question: "  \n " },
    status: 400,
    param: "question",
    message: /must not be empty/,
  },
  {
    name: "question too long",
    body: { question: "x".repeat(1001) },
    status: 400,
    param: "question",
    message: /at most 1000 characters; got 1001/,
  },
  {
    name: "question is null",
    body: { question: null },
    status: 400,
    param: "question",
    message: /must be a string; got null/,
  },
  // unknown fields
  {
    name: "misspelt field",
    body: chat({ max_new_token: 5 }),
    status: 400,
    param: "max_new_token",
    code: "unknown_field",
    message: /Unknown field 'max_new_token'/,
  },
  // max_num
  {
    name: "max_num 41",
    body: chat({ max_num: 41 }),
    status: 400,
    param: "max_num",
    message: /at most 40; got 41/,
  },
  {
    name: "max_num 0",
    body: chat({ max_num: 0 }),
    status: 400,
    param: "max_num",
    message: /at least 1; got 0/,
  },
  {
    name: "max_num 2.5",
    body: chat({ max_num: 2.5 }),
    status: 400,
    param: "max_num",
    message: /must be an integer; got a number 2.5/,
  },
  {
    name: "max_new_tokens past a double (JSON reads it as Infinity)",
    body: '{"question":"What is it?","max_new_tokens":1e400}',
    status: 400,
    param: "max_new_tokens",
    message: /must be a finite number; got Infinity/,
  },
  {
    name: "max_num string",
    body: chat({ max_num: "6" }),
    status: 400,
    param: "max_num",
    message: /got a string "6"/,
  },
  // image_layout
  {
    name: "image_layout unknown",
    body: chat({ image_layout: "grid" }),
    status: 400,
    param: "image_layout",
    message: /must be one of "concat", "numbered"; got "grid"/,
  },
  {
    name: "image_layout number",
    body: chat({ image_layout: 1 }),
    status: 400,
    param: "image_layout",
    message: /must be one of "concat", "numbered"; got 1/,
  },
  {
    name: "batch image_layout (one block per item there)",
    path: "/v1/batch_chat",
    body: { items: [{ question: "a" }], image_layout: "numbered" },
    status: 400,
    param: "image_layout",
    code: "unknown_field",
    message: /Unknown field 'image_layout'/,
  },
  // generation fields
  {
    name: "temperature 0 with do_sample",
    body: chat({ do_sample: true, temperature: 0 }),
    status: 400,
    param: "temperature",
    message: /greater than 0 when do_sample/,
  },
  {
    name: "negative temperature",
    body: chat({ temperature: -1 }),
    status: 400,
    param: "temperature",
    message: /at least 0; got -1/,
  },
  { name: "top_p 0", body: chat({ top_p: 0 }), status: 400, param: "top_p", message: /more than 0; got 0/ },
  {
    name: "top_p 1.5",
    body: chat({ top_p: 1.5 }),
    status: 400,
    param: "top_p",
    message: /at most 1; got 1.5/,
  },
  { name: "top_k -1", body: chat({ top_k: -1 }), status: 400, param: "top_k", message: /at least 0; got -1/ },
  {
    name: "repetition_penalty 0",
    body: chat({ repetition_penalty: 0 }),
    status: 400,
    param: "repetition_penalty",
    message: /more than 0/,
  },
  {
    name: "num_beams 9",
    body: chat({ num_beams: 9 }),
    status: 400,
    param: "num_beams",
    message: /at most 8; got 9/,
  },
  {
    name: "num_beams 0",
    body: chat({ num_beams: 0 }),
    status: 400,
    param: "num_beams",
    message: /at least 1/,
  },
  {
    name: "max_new_tokens 0",
    body: chat({ max_new_tokens: 0 }),
    status: 400,
    param: "max_new_tokens",
    message: /at least 1; got 0/,
  },
  {
    name: "max_new_tokens over limit",
    body: chat({ max_new_tokens: 100000 }),
    status: 400,
    param: "max_new_tokens",
    message: /at most 4096/,
  },
  {
    name: "do_sample string",
    body: chat({ do_sample: "yes" }),
    status: 400,
    param: "do_sample",
    message: /must be a boolean; got a string "yes"/,
  },
  {
    name: "seed negative",
    body: chat({ seed: -3 }),
    status: 400,
    param: "seed",
    message: /at least 0; got -3/,
  },
  {
    name: "stream string",
    body: chat({ stream: "true" }),
    status: 400,
    param: "stream",
    message: /must be a boolean/,
  },
  // images
  {
    name: "images not an array",
    body: chat({ images: "abc" }),
    status: 400,
    param: "images",
    message: /must be an array; got a string/,
  },
  {
    name: "image is a number",
    body: chat({ images: [5] }),
    status: 400,
    param: "images[0]",
    message: /wrong shape; got a number 5/,
  },
  {
    name: "bad base64",
    body: chat({ images: ["not base64!!"] }),
    status: 400,
    param: "images[0]",
    code: "invalid_base64",
    message: /not valid base64/,
  },
  {
    name: "bad base64 length",
    body: chat({ images: ["QUJDR"] }),
    status: 400,
    param: "images[0]",
    code: "invalid_base64",
    message: /not valid base64/,
  },
  {
    name: "data URL without base64",
    body: chat({ images: ["data:image/png,abc"] }),
    status: 400,
    param: "images[0]",
    message: /without ';base64,'/,
  },
  {
    name: "data URL of text",
    body: chat({ images: ["data:text/plain;base64,aGk="] }),
    status: 400,
    param: "images[0]",
    message: /media type "text\/plain"/,
  },
  {
    name: "http URL",
    body: chat({ images: ["https://example.com/cat.png"] }),
    status: 400,
    param: "images[0]",
    message: /does not fetch URLs/,
  },
  {
    name: "corrupt PNG",
    body: chat({ images: [toBase64(png.slice(0, 1000))] }),
    status: 400,
    param: "images[0]",
    code: "invalid_image",
    message: /not a valid PNG or JPEG/,
  },
  {
    name: "text posing as image",
    body: chat({ images: [dataUrl(new TextEncoder().encode("hello world"))] }),
    status: 400,
    param: "images[0]",
    code: "invalid_image",
    message: /not a valid PNG or JPEG/,
  },
  {
    name: "second image corrupt",
    body: chat({ images: [dataUrl(png), toBase64(new Uint8Array([1, 2, 3]))] }),
    status: 400,
    param: "images[1]",
    message: /Image 1 is not a valid/,
  },
  {
    name: "image over MAX_IMAGE_BYTES",
    body: chat({ images: [dataUrl(bigPng)] }),
    status: 413,
    param: "images[0]",
    code: "image_too_large",
    message: /bytes; the limit is 200000 bytes/,
  },
  {
    name: "image over MAX_IMAGE_PIXELS",
    body: chat({ images: [dataUrl(pngHeaderOnly(91000, 91000))] }),
    status: 413,
    param: "images[0]",
    message: /91000×91000 pixels; the limit is 10000000 pixels/,
  },
  {
    name: "too many images",
    body: chat({ images: Array(9).fill(dataUrl(png)) }),
    status: 400,
    param: "images",
    message: /at most 8 items; got 9 items/,
  },
  {
    name: "empty image string",
    body: chat({ images: [""] }),
    status: 400,
    param: "images[0]",
    message: /is empty/,
  },
  // sessions
  {
    name: "unknown session",
    body: chat({ session_id: SESSION_LIKE }),
    status: 404,
    param: "session_id",
    code: "session_not_found",
    message: /does not exist or has expired/,
  },
  {
    name: "malformed session id",
    body: chat({ session_id: "../../etc" }),
    status: 404,
    param: "session_id",
    message: /"..\/..\/etc" does not exist/,
  },
  {
    name: "session_id number",
    body: chat({ session_id: 12 }),
    status: 400,
    param: "session_id",
    message: /must be a string/,
  },
  {
    name: "GET unknown session",
    method: "GET",
    path: `/v1/sessions/${SESSION_LIKE}`,
    status: 404,
    code: "session_not_found",
    message: /does not exist/,
  },
  {
    name: "DELETE unknown session",
    method: "DELETE",
    path: `/v1/sessions/${SESSION_LIKE}`,
    status: 404,
    message: /does not exist/,
  },
  {
    name: "POST /v1/sessions with unknown field",
    path: "/v1/sessions",
    body: { ttl: 5 },
    status: 400,
    param: "ttl",
    message: /Unknown field 'ttl'/,
  },
  // multipart
  {
    name: "multipart max_num text",
    body: form({ question: "q", max_num: "many" }),
    headers: {},
    status: 400,
    param: "max_num",
    message: /must be a number; got a string "many"/,
  },
  {
    name: "multipart image_layout unknown",
    body: form({ question: "q", image_layout: "Numbered" }),
    headers: {},
    status: 400,
    param: "image_layout",
    message: /must be one of "concat", "numbered"; got "Numbered"/,
  },
  {
    name: "multipart corrupt file",
    body: form({ question: "q", images: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]) }),
    headers: {},
    status: 400,
    param: "images[0]",
    message: /not a valid PNG/,
  },
  {
    name: "multipart missing question",
    body: form({ max_num: "2" }),
    headers: {},
    status: 400,
    param: "question",
    message: /is required/,
  },
  // auth
  {
    name: "missing API key",
    body: chat({}),
    headers: { "content-type": "application/json", authorization: "" },
    status: 401,
    code: "missing_api_key",
    message: /Missing API key/,
  },
  {
    name: "wrong API key",
    body: chat({}),
    headers: { "content-type": "application/json", authorization: "Bearer nope" },
    status: 401,
    code: "invalid_api_key",
    message: /Incorrect API key/,
  },
  {
    name: "wrong API key on /metrics",
    method: "GET",
    path: "/metrics",
    headers: { authorization: "Bearer nope" },
    status: 401,
    message: /Incorrect API key/,
  },
  // routes
  {
    name: "unknown route",
    path: "/v1/chatt",
    body: chat({}),
    status: 404,
    code: "unknown_route",
    message: /No route POST \/v1\/chatt/,
  },
  // batch
  {
    name: "batch without items",
    path: "/v1/batch_chat",
    body: {},
    status: 400,
    param: "items",
    message: /'items' is required/,
  },
  {
    name: "batch with empty items",
    path: "/v1/batch_chat",
    body: { items: [] },
    status: 400,
    param: "items",
    message: /at least 1 items; got 0/,
  },
  {
    name: "batch item without question",
    path: "/v1/batch_chat",
    body: { items: [{ question: "a" }, {}] },
    status: 400,
    param: "items[1].question",
    message: /is required/,
  },
  {
    name: "batch item bad image",
    path: "/v1/batch_chat",
    body: { items: [{ question: "a", images: ["%%%"] }] },
    status: 400,
    param: "items[0].images[0]",
    message: /not valid base64/,
  },
  {
    name: "batch too many items",
    path: "/v1/batch_chat",
    body: { items: Array(17).fill({ question: "a" }) },
    status: 400,
    param: "items",
    message: /at most 16 items/,
  },
  {
    name: "batch max_num 41",
    path: "/v1/batch_chat",
    body: { items: [{ question: "a" }], max_num: 41 },
    status: 400,
    param: "max_num",
    message: /at most 40/,
  },
  // OpenAI
  {
    name: "openai: image_layout unknown",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "hi" }], { image_layout: "tiles" }),
    status: 400,
    param: "image_layout",
    message: /must be one of "concat", "numbered"; got "tiles"/,
  },
  {
    name: "openai: no messages",
    path: "/v1/chat/completions",
    body: msgs([]),
    status: 400,
    param: "messages",
    message: /at least 1 items/,
  },
  {
    name: "openai: unknown model",
    path: "/v1/chat/completions",
    body: { model: "gpt-4", messages: [{ role: "user", content: "hi" }] },
    status: 404,
    param: "model",
    code: "model_not_found",
    message: /"gpt-4" is not served here; use "internvl-fake"/,
  },
  {
    name: "openai: missing model",
    path: "/v1/chat/completions",
    body: { messages: [{ role: "user", content: "hi" }] },
    status: 400,
    param: "model",
    message: /is required/,
  },
  {
    name: "openai: bad role",
    path: "/v1/chat/completions",
    body: msgs([{ role: "robot", content: "hi" }]),
    status: 400,
    param: "messages[0].role",
    message: /must be one of "system"/,
  },
  {
    name: "openai: ends with assistant",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }, { role: "assistant", content: "b" }]),
    status: 400,
    param: "messages[1]",
    message: /last message must be from the user/,
  },
  {
    name: "openai: two users in a row",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }, { role: "user", content: "b" }]),
    status: 400,
    param: "messages[1].role",
    message: /"assistant" was expected/,
  },
  {
    name: "openai: image in a later message",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }, { role: "assistant", content: "b" }, {
      role: "user",
      content: [{ type: "image_url", image_url: { url: dataUrl(png) } }, { type: "text", text: "c" }],
    }]),
    status: 400,
    param: "messages[2].content[0]",
    message: /only with the first question/,
  },
  {
    name: "openai: remote image URL",
    path: "/v1/chat/completions",
    body: msgs([{
      role: "user",
      content: [{ type: "image_url", image_url: { url: "http://x/y.png" } }, { type: "text", text: "c" }],
    }]),
    status: 400,
    param: "messages[0].content[0].image_url.url",
    message: /must be a data URL/,
  },
  {
    name: "openai: unknown part type",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: [{ type: "audio" }] }]),
    status: 400,
    param: "messages[0].content[0].type",
    message: /unknown type; Expected 'text' \| 'image_url'/,
  },
  {
    name: "openai: n 2",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }], { n: 2 }),
    status: 400,
    param: "n",
    message: /must be one of 1; got 2/,
  },
  {
    name: "openai: temperature 3",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }], { temperature: 3 }),
    status: 400,
    param: "temperature",
    message: /at most 2; got 3/,
  },
  {
    name: "openai: stop sequences",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }], { stop: ["x"] }),
    status: 400,
    param: "stop",
    message: /not supported/,
  },
  {
    name: "openai: empty user text",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: " " }]),
    status: 400,
    param: "messages[0].content",
    message: /has no text/,
  },
  {
    name: "openai: only system",
    path: "/v1/chat/completions",
    body: msgs([{ role: "system", content: "be nice" }]),
    status: 400,
    param: "messages",
    message: /no user message/,
  },
  {
    name: "openai: max_tokens 0",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }], { max_tokens: 0 }),
    status: 400,
    param: "max_tokens",
    message: /at least 1/,
  },
  {
    name: "openai: max_num 41",
    path: "/v1/chat/completions",
    body: msgs([{ role: "user", content: "a" }], { max_num: 41 }),
    status: 400,
    param: "max_num",
    message: /at most 40/,
  },
];

Deno.test("Malformed requests get the right 4xx with a message naming the field", async (t) => {
  assert.ok(cases.length >= 50, `only ${cases.length} cases`);
  const app = await makeTestApp({
    settings: {
      apiKey: KEY,
      maxBodyBytes: 2_000_000,
      maxImageBytes: 200_000,
      maxImagePixels: 10_000_000,
      maxQuestionChars: 1000,
    },
  });
  for (const c of cases) {
    await t.step(c.name, async () => {
      const isForm = c.body instanceof FormData;
      const raw = c.body instanceof Uint8Array;
      const headers: Record<string, string> = {
        ...AUTH,
        ...(isForm || raw || c.body === undefined ? {} : { "content-type": "application/json" }),
        ...c.headers,
      };
      for (const [k, v] of Object.entries(headers)) if (v === "") delete headers[k];
      const body = c.body === undefined
        ? undefined
        : isForm || c.body instanceof Uint8Array
        ? c.body as BodyInit
        : typeof c.body === "string"
        ? c.body
        : JSON.stringify(c.body);
      const res = await app.app.request(c.path ?? "/v1/chat", { method: c.method ?? "POST", headers, body });
      const text = await res.text();
      assert.equal(res.status, c.status, text);
      const { error } = JSON.parse(text);
      assert.equal(typeof error.type, "string");
      assert.match(error.message, c.message);
      if (c.param !== undefined) assert.equal(error.param, c.param);
      if (c.code !== undefined) assert.equal(error.code, c.code);
    });
  }
  await t.step("a good request still works afterwards", async () => {
    const res = await app.app.request("/v1/chat", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ question: "Fine?", images: [dataUrl(png)] }),
    });
    assert.equal(res.status, 200);
    assert.match((await res.json()).response, /Fine\?/);
  });
  await t.step("/health needs no API key", async () => {
    assert.equal((await app.app.request("/health")).status, 200);
  });
  app.close();
});
