// The HTTP API on the real tiny WebGPU engine, on a real loopback server, against the reference goldens.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { WebGpuEngine } from "../../src/engine/webgpu_engine.ts";
import type { ChatEngine, ChatRequest, ChatResult } from "../../src/engine/types.ts";
import { startServer } from "../../src/server/serve.ts";
import { defaultSettings } from "../../src/server/settings.ts";
import { caseById, goldenI32, imageFile, modelDir } from "../model/tiny_fixture.ts";
import { dataUrl } from "./test_app.ts";

/** The real engine, remembering the prompt ids of every chat round it ran. */
class RecordingEngine implements ChatEngine {
  readonly prompts: number[][] = [];
  constructor(private readonly inner: WebGpuEngine) {}
  get modelInfo() {
    return this.inner.modelInfo;
  }
  async chat(req: ChatRequest): Promise<ChatResult> {
    const result = await this.inner.chat(req);
    this.prompts.push(result.promptTokenIds);
    return result;
  }
  batchChat(...args: Parameters<ChatEngine["batchChat"]>) {
    return this.inner.batchChat(...args);
  }
}

const root = new URL("../../", import.meta.url).pathname;

Deno.test("real engine over HTTP: /v1/chat, /v1/chat/completions and the CLI agree; sessions replay history", async (t) => {
  const dir = await Deno.makeTempDir();
  let engine: RecordingEngine | null = null;
  const running = await startServer(
    defaultSettings({ host: "127.0.0.1", port: 0, kvPath: `${dir}/sessions.kv`, modelDir }),
    async (options) => {
      // The HTTP surfaces and the CLI are the point; main.ts's own start with the warm-up is serve_process's.
      const inner = await WebGpuEngine.load({ ...options, warmUp: false });
      globalThis.addEventListener("unload", () => inner.model.gpu.destroy());
      engine = new RecordingEngine(inner);
      return engine;
    },
    () => {},
  );
  await running.loaded;
  const base = `http://127.0.0.1:${running.server.addr.port}`;
  try {
    const text = caseById("text_only");

    await t.step("the same question gives the same answer on every surface", async () => {
      const chat = await fetch(`${base}/v1/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ question: text.question, max_new_tokens: 32 }),
      });
      assert.equal(chat.status, 200);
      const body = await chat.json();
      assert.equal(body.response, text.response);
      assert.deepEqual(body.usage, {
        prompt_tokens: text.prompt_len,
        completion_tokens: text.response_ids.length,
      });

      const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
      const completion = await client.chat.completions.create({
        model: engine!.modelInfo.id,
        messages: [{ role: "user", content: text.question }],
        max_tokens: 32,
      });
      assert.equal(completion.choices[0].message.content, text.response);

      const stream = await client.chat.completions.create({
        model: engine!.modelInfo.id,
        messages: [{ role: "user", content: text.question }],
        max_tokens: 32,
        stream: true,
      });
      let streamed = "";
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
      assert.equal(streamed, text.response);

      const cli = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-ffi",
          "scripts/chat.ts",
          "--model",
          modelDir,
          "--json",
          "--max-new-tokens",
          "32",
          text.question,
        ],
        cwd: root,
      }).output();
      assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
      assert.equal(JSON.parse(new TextDecoder().decode(cli.stdout)).response, text.response);
    });

    await t.step("a second round with only session_id builds the reference multi-round prompt", async () => {
      const first = caseById("single_image"), second = caseById("history_round2");
      const r1 = await fetch(`${base}/v1/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          question: first.question,
          images: [dataUrl(imageFile("img3"))],
          max_new_tokens: 32,
        }),
      });
      assert.equal(r1.status, 200);
      const b1 = await r1.json();
      assert.equal(b1.response, first.response);
      const r2 = await fetch(`${base}/v1/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ question: second.question, session_id: b1.session_id, max_new_tokens: 32 }),
      });
      assert.equal(r2.status, 200);
      const b2 = await r2.json();
      assert.deepEqual(engine!.prompts.at(-1), Array.from(goldenI32(second.input_ids.file)));
      assert.equal(b2.response, second.response);
      const history = await (await fetch(`${base}/v1/sessions/${b1.session_id}`)).json();
      assert.equal(JSON.stringify(history).includes(second.response), true);
    });
  } finally {
    await running.close();
    await Deno.remove(dir, { recursive: true });
  }
});
