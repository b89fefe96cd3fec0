// `deno task serve` as users start it: main.ts in its own process, the engine on its own thread (the
// default ENGINE_THREAD=worker), answering over loopback, and leaving cleanly on SIGTERM.
import assert from "node:assert/strict";
import { caseById, imageFile } from "../model/tiny_fixture.ts";
import { dataUrl } from "./test_app.ts";

const root = new URL("../../", import.meta.url).pathname;

/** The serve task's command line (deno.json "serve"), without the WebGPU wrapper this suite already ran. */
const serveArgs = [
  "run",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--unstable-kv",
  "--unstable-no-legacy-abort",
  "main.ts",
];

/** Reads the child's stdout lines until `done` returns a value. */
async function readUntil<T>(lines: AsyncIterator<string>, seen: string[], done: (l: string) => T | null) {
  while (true) {
    const next = await lines.next();
    if (next.done) throw new Error(`the server exited; its output:\n${seen.join("\n")}`);
    seen.push(next.value);
    const value = done(next.value);
    if (value !== null) return value;
  }
}

async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest) yield rest;
}

Deno.test("main.ts serves the tiny model from the engine's own thread and exits on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs,
    cwd: root,
    // KV_CACHE_DTYPE=bf16: the setting goes from the environment through the engine's thread to its model
    // (the Model ready line reports what that model uses); the f32 default serves in real_engine_test.
    env: { PORT: "0", KV_PATH: `${dir}/sessions.kv`, IMAGE_WORKERS: "1", KV_CACHE_DTYPE: "bf16" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const seen: string[] = [];
  const lines = linesOf(child.stdout)[Symbol.asyncIterator]();
  try {
    const port = await readUntil(
      lines,
      seen,
      (l) => l.match(/^Listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1] ?? null,
    );
    const base = `http://127.0.0.1:${port}`;
    const ready = await readUntil(lines, seen, (l) => l.startsWith("Model ready") ? l : null);
    assert.match(ready, /, KV cache bf16, running on its own thread$/);
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "ok");

    const post = (body: unknown) =>
      fetch(`${base}/v1/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const c = caseById("text_only");
    const res = await post({ question: c.question, max_new_tokens: 32 });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).response, c.response);

    // Two rounds at once (the engine may batch them): each gets its own answer, one of them streamed.
    const two = caseById("two_images_concat");
    const [streamed, withImages] = await Promise.all([
      post({ question: c.question, max_new_tokens: 32, stream: true }).then((r) => r.text()),
      post({
        question: two.question,
        images: two.images.map((k: string) => dataUrl(imageFile(k))),
        max_new_tokens: 32,
      }).then((r) => r.json()),
    ]);
    assert.equal(withImages.response, two.response);
    const frames = streamed.split("\n\n").filter((f) => f.startsWith("event: delta"));
    const text = frames.map((f) => JSON.parse(f.slice(f.indexOf("data: ") + 6)).text).join("");
    assert.equal(text, c.response, streamed);

    const bad = await post({ question: "What is it?", images: ["data:image/png;base64,iVBORw0KGgo="] });
    assert.equal(bad.status, 400, "a broken image from the engine's thread must stay a client error");
    assert.equal((await bad.json()).error.param, "images[0]");
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  for (let next = await lines.next(); !next.done; next = await lines.next()) seen.push(next.value);
  assert.ok(seen.some((l) => l.startsWith("SIGTERM: finishing open requests")), seen.join("\n"));
  assert.equal(status.code, 0, `exit ${status.code}; output:\n${seen.join("\n")}`);
  assert.ok(!seen.some((l) => l.startsWith("still busy")), "the server did not end by itself");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("main.ts refuses a KV_CACHE_DTYPE it does not know before loading anything, naming the choices", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: serveArgs,
    cwd: root,
    env: { PORT: "0", KV_CACHE_DTYPE: "f16" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.match(stderr, /KV_CACHE_DTYPE must be one of f32, bf16 \(got "f16"\)/);
  assert.equal(new TextDecoder().decode(out.stdout), "", "nothing served, nothing loaded");
});

Deno.test("main.ts exits at once with 1 at a second signal, even while the model still loads", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs,
    cwd: root,
    env: { PORT: "0", KV_PATH: `${dir}/sessions.kv` },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended = false;
  child.status.then(() => ended = true);
  const seen: string[] = [];
  const lines = linesOf(child.stdout)[Symbol.asyncIterator]();
  try {
    await readUntil(lines, seen, (l) => l.startsWith("Listening on") ? l : null);
    child.kill("SIGTERM");
    // The first signal's stop waits for the model still loading; the second one does not wait for anything.
    await readUntil(lines, seen, (l) => l.startsWith("SIGTERM: finishing open requests") ? l : null);
    child.kill("SIGTERM");
  } catch (err) {
    if (!ended) child.kill("SIGKILL");
    throw err;
  }
  const status = await child.status;
  for (let next = await lines.next(); !next.done; next = await lines.next()) seen.push(next.value);
  await child.stderr.cancel();
  assert.ok(seen.includes("SIGTERM again: exiting now"), seen.join("\n"));
  assert.ok(!seen.some((l) => l.startsWith("Model ready")), `the model loaded first:\n${seen.join("\n")}`);
  assert.equal(status.code, 1, seen.join("\n"));
  await Deno.remove(dir, { recursive: true });
});
