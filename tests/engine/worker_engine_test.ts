import assert from "node:assert/strict";
import { defaultGenerationConfig } from "../../src/engine/types.ts";
import { WorkerEngine } from "../../src/engine/worker_engine.ts";
import { InputError } from "../../src/errors.ts";
import { caseById, imageFile, manifest, modelDir } from "../model/tiny_fixture.ts";

const greedy32 = { ...defaultGenerationConfig, maxNewTokens: 32 };

Deno.test("WorkerEngine: the tiny engine on its own thread answers as the reference does", async (t) => {
  const stages: string[] = [];
  const engine = await WorkerEngine.load({
    modelDir,
    randomWeights: true,
    // The thread boundary is the point here; the warm-up (every decode-sized pipeline, ~13 s of compiling on
    // llvmpipe) is checked where engines load as the server loads them (webgpu_engine_test, serve_process).
    warmUp: false,
    onProgress: (_fraction, what) => stages.push(what),
  });
  try {
    assert.equal(engine.modelInfo.id, "tiny-internvl");
    assert.equal(engine.fault, null);
    assert.equal(stages.at(-1), "ready", "loading progress crosses from the engine's thread");

    await t.step("images sent ahead are the ones the request's chat takes", async () => {
      const c = caseById("single_image");
      const images = c.images.map((k: string) => imageFile(k, true));
      const hits = engine.earlyImageHits;
      const drop = engine.startImagePreparation(images, 6);
      const result = await engine.chat({
        question: c.question,
        images,
        history: [],
        maxNum: 6,
        generation: greedy32,
      });
      drop();
      assert.equal(engine.earlyImageHits, hits + 1, "the engine prepared the images again");
      assert.deepEqual(engine.stats(), {
        batchedRounds: 0,
        joins: 0,
        interleavedJoins: 0,
        keptHits: 0,
        keptMisses: 1,
        earlyImageHits: 1,
        keptPrefixCopies: 0,
        keptImageHits: 0,
        keptImageMisses: 1,
      });
      assert.deepEqual(result.outputTokenIds, c.response_ids);
      assert.deepEqual(result.images.map((i) => i.tiles), [manifest.images[c.images[0]].num_tiles]);
    });

    // Text (the two-image golden runs in webgpu_engine_test; its two encodes here cost the suite ~7 s).
    await t.step("the golden response, streamed piece by piece", async () => {
      const c = caseById("text_only");
      const pieces: string[] = [];
      const result = await engine.chat({
        question: c.question,
        images: c.images.map((k: string) => imageFile(k)),
        history: [],
        maxNum: 6,
        generation: greedy32,
        onText: (d) => pieces.push(d),
      });
      assert.deepEqual(result.outputTokenIds, c.response_ids);
      assert.equal(result.response, c.response);
      assert.ok(pieces.length > 1, "the text came in one piece");
      assert.equal(pieces.join(""), c.response);
    });

    await t.step("batchChat returns the reference batch_chat responses", async () => {
      const c = caseById("batch_chat");
      const items = c.questions.map((q: string, i: number) => ({
        question: q,
        images: [imageFile(c.images[i])],
      }));
      const results = await engine.batchChat(items, 6, greedy32);
      assert.deepEqual(
        results.map((r) => r.response),
        c.samples.map((s: { response: string }) => s.response),
      );
    });

    await t.step("a broken image is an InputError naming it, and the engine still answers", async () => {
      const good = imageFile(caseById("single_image").images[0]);
      const err = await engine.chat({
        question: "What is shown?",
        images: [good, good.slice(0, 120)],
        history: [],
        maxNum: 6,
        generation: greedy32,
      }).then(() => null, (x) => x);
      assert.ok(err instanceof InputError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.param, "images[1]");
      assert.match(err.message, /^images\[1\]: PNG image is corrupt or truncated/);
      const c = caseById("text_only");
      const after = await engine.chat({
        question: c.question,
        images: [],
        history: [],
        maxNum: 6,
        generation: greedy32,
      });
      assert.equal(after.response, c.response);
      assert.equal(engine.fault, null);
    });

    await t.step("an abort reaches a request waiting behind another, with the signal's reason", async () => {
      const c = caseById("text_only");
      const ask = (signal?: AbortSignal) =>
        engine.chat({
          question: c.question,
          images: [],
          history: [],
          maxNum: 6,
          generation: greedy32,
          signal,
        });
      const abort = new AbortController();
      const first = ask();
      const second = ask(abort.signal).then(() => null, (x) => x);
      abort.abort(new DOMException("The client closed the stream", "AbortError"));
      assert.equal((await first).response, c.response, "the running request was disturbed");
      const err = await second;
      assert.ok(err instanceof DOMException, String(err));
      assert.equal(err.name, "AbortError");
      assert.equal(err.message, "The client closed the stream");
      const already = await ask(AbortSignal.abort(new DOMException("gone", "AbortError"))).catch((x) => x);
      assert.equal(already.message, "gone");
    });
  } finally {
    await engine.close();
  }
  const closed = await engine.chat({
    question: "hi",
    images: [],
    history: [],
    maxNum: 6,
    generation: greedy32,
  })
    .catch((x) => x);
  assert.match(String(closed), /the engine was closed/);
});

Deno.test("WorkerEngine: a model that fails to load rejects with the engine's error", async () => {
  const err = await WorkerEngine.load({ modelDir: "/nonexistent/internvl" }).catch((x) => x);
  assert.ok(err instanceof Error);
  assert.match(err.message, /\/nonexistent\/internvl/);
});

Deno.test("WorkerEngine: a crashed engine thread fails the calls on it and becomes the engine's fault", async () => {
  const engine = await WorkerEngine.load(
    { modelDir: "unused" },
    new URL("./crashing_engine_worker.ts", import.meta.url),
  );
  try {
    const ask = () =>
      engine.chat({ question: "hi", images: [], history: [], maxNum: 6, generation: greedy32 }).catch((x) =>
        x
      );
    const err = await ask();
    assert.match(String(err), /the engine's thread failed: .*kernel exploded/);
    assert.match(engine.fault ?? "", /kernel exploded/, "the server would keep answering as if healthy");
    assert.match(String(await ask()), /kernel exploded/);
  } finally {
    await engine.close();
  }
});
