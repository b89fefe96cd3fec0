// The HTTP server while it generates: a real server on loopback (src/server/serve.ts, the engine loaded as
// `deno task serve` loads it), --clients clients each sending chat requests back to back and one more
// polling /health every 5 ms (--poll-ms; 0: none, for tokens/s alone), for each engine thread (ENGINE_THREAD:
// worker, the default, or main) and each MAX_BATCH given, alternating. Reports /health latency, the serving
// thread's event-loop lag (src/bench/event_loop_lag.ts), the chats' tokens/s in all and their latency.
//   deno run -A --unstable-kv --unstable-no-legacy-abort scripts/bench_serving.ts [--model DIR] [--rounds 2]
//     [--requests 12] [--max-new-tokens 64] [--threads worker,main] [--max-batch 8] [--clients 1]
//     [--poll-ms 5] [--out FILE]
import { parseArgs } from "node:util";
import { loadEngine } from "../src/engine/load_engine.ts";
import { ENGINE_THREADS, type EngineThread } from "../src/engine/types.ts";
import { startLagProbe } from "../src/bench/event_loop_lag.ts";
import { quantile, round2 } from "../src/bench/util.ts";
import { startServer } from "../src/server/serve.ts";
import { defaultSettings, TINY_MODEL_DIR } from "../src/server/settings.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    rounds: { type: "string", default: "2" },
    requests: { type: "string", default: "12" },
    "max-new-tokens": { type: "string", default: "64" },
    threads: { type: "string", default: "worker,main" },
    "max-batch": { type: "string", default: "8" },
    clients: { type: "string", default: "1" },
    "poll-ms": { type: "string", default: "5" },
    out: { type: "string" },
  },
});
const positive = (name: string, raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive integer, got "${raw}"`);
  return n;
};
const rounds = positive("rounds", values.rounds);
const requests = positive("requests", values.requests);
const maxNewTokens = positive("max-new-tokens", values["max-new-tokens"]);
const clients = positive("clients", values.clients);
const maxBatches = values["max-batch"].split(",").map((b) => positive("max-batch", b));
const threads = values.threads.split(",").map((t) => {
  if (!(ENGINE_THREADS as readonly string[]).includes(t)) {
    throw new Error(`--threads takes ${ENGINE_THREADS.join(", ")}, got "${t}"`);
  }
  return t as EngineThread;
});
const pollMs = Number(values["poll-ms"]);
if (!(Number.isInteger(pollMs) && pollMs >= 0)) {
  throw new Error(`--poll-ms takes an integer ≥ 0, got "${values["poll-ms"]}"`);
}
const modelDir = values.model ?? TINY_MODEL_DIR;
const questions = ["a", "b c d", "Describe the weather in three words.", "!!!", "What is 2 + 2?", "Hello"];

async function run(thread: EngineThread, maxBatch: number) {
  const dir = await Deno.makeTempDir();
  const running = await startServer(
    defaultSettings({
      port: 0,
      kvPath: `${dir}/sessions.kv`,
      modelDir,
      randomWeights: !values.model,
      engineThread: thread,
      maxBatch,
    }),
    loadEngine,
    () => {},
  );
  await running.loaded;
  const base = `http://127.0.0.1:${running.server.addr.port}`;
  const latency: number[] = [];
  const ask = async (question: string) => {
    const t = performance.now();
    const res = await fetch(`${base}/v1/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question, max_new_tokens: maxNewTokens }),
    });
    if (res.status !== 200) throw new Error(`/v1/chat answered ${res.status}: ${await res.text()}`);
    const tokens = (await res.json()).usage.completion_tokens as number;
    latency.push(performance.now() - t);
    return tokens;
  };
  await ask("warm up");
  latency.length = 0;
  const health: number[] = [];
  let busy = pollMs > 0;
  const poll = (async () => {
    while (busy) {
      const t = performance.now();
      const res = await fetch(`${base}/health`);
      await res.body?.cancel();
      health.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  const stopLag = startLagProbe();
  const t0 = performance.now();
  let tokens = 0, next = 0;
  // Each client asks the next question until `requests` have been asked.
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < requests) {
      const n = await ask(questions[next++ % questions.length]);
      tokens += n; // not `tokens += await …`: that reads `tokens` before the wait
    }
  }));
  const wallMs = performance.now() - t0;
  const lag = stopLag();
  busy = false;
  await poll;
  await running.close();
  await Deno.remove(dir, { recursive: true });
  return {
    thread,
    max_batch: maxBatch,
    clients,
    requests,
    completion_tokens: tokens,
    wall_ms: round2(wallMs),
    tokens_per_s: round2(tokens / (wallMs / 1000)),
    request_ms_p50: round2(quantile(latency, 0.5)),
    request_ms_max: round2(Math.max(...latency)),
    health_polls: health.length,
    health_ms_p50: round2(quantile(health, 0.5)),
    health_ms_p99: round2(quantile(health, 0.99)),
    health_ms_max: health.length ? round2(Math.max(...health)) : null,
    event_loop_lag: lag,
  };
}

const runs = [];
for (let round = 0; round < rounds; round++) {
  for (const thread of threads) {
    for (const maxBatch of maxBatches) {
      const r = { round: round + 1, ...(await run(thread, maxBatch)) };
      runs.push(r);
      console.log(
        `${thread.padEnd(6)} MAX_BATCH ${maxBatch}, ${clients} client(s), round ${round + 1}: ` +
          `${r.completion_tokens} tokens in ${r.wall_ms} ms (${r.tokens_per_s} tokens/s; a request p50 ` +
          `${r.request_ms_p50} max ${r.request_ms_max} ms); /health p50 ${r.health_ms_p50} p99 ` +
          `${r.health_ms_p99} max ${r.health_ms_max} ms over ${r.health_polls} polls; event loop late p50 ` +
          `${r.event_loop_lag.p50_ms} p99 ${r.event_loop_lag.p99_ms} max ${r.event_loop_lag.max_ms} ms`,
      );
    }
  }
}
const adapter = await navigator.gpu.requestAdapter();
const report = {
  date: new Date().toISOString().slice(0, 10),
  adapter: adapter?.info.description || adapter?.info.device || "unknown",
  model_dir: modelDir,
  max_new_tokens: maxNewTokens,
  runs,
};
if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(report, null, 2) + "\n");
