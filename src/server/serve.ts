/**
 * Starting the server: open the session store, listen at once, then load the model in the background
 * (so /health answers 503 "loading" instead of refusing connections while gigabytes of weights load).
 */
import type { LoadEngineOptions } from "../engine/load_engine.ts";
import type { ChatEngine } from "../engine/types.ts";
import { WorkerEngine } from "../engine/worker_engine.ts";
import { SessionStore } from "../sessions/session_store.ts";
import { createApp } from "./app.ts";
import { EngineSlot } from "./engine_slot.ts";
import { type Settings, TINY_MODEL_DIR } from "./settings.ts";

export interface RunningServer {
  server: Deno.HttpServer<Deno.NetAddr>;
  slot: EngineSlot;
  sessions: SessionStore;
  /** Resolves once the engine loaded or failed (never rejects). */
  loaded: Promise<void>;
  close(): Promise<void>;
}

export type EngineLoader = (options: LoadEngineOptions) => Promise<ChatEngine>;

export async function startServer(
  settings: Settings,
  loadEngine: EngineLoader,
  log: (line: string) => void = console.log,
): Promise<RunningServer> {
  const kvTarget = settings.kvUrl ?? settings.kvPath;
  if (!settings.kvUrl && settings.kvPath !== ":memory:") {
    const dir = settings.kvPath.includes("/")
      ? settings.kvPath.slice(0, settings.kvPath.lastIndexOf("/"))
      : "";
    if (dir) await Deno.mkdir(dir, { recursive: true });
  }
  const sessions = await SessionStore.open(kvTarget, { ttlSeconds: settings.sessionTtlSeconds });
  const slot = new EngineSlot();
  const app = createApp({ engine: slot, sessions, settings });
  const server = Deno.serve({
    hostname: settings.host,
    port: settings.port,
    onListen: ({ hostname, port }) =>
      log(`Listening on http://${hostname}:${port} (sessions in ${settings.kvUrl ? "remote KV" : kvTarget})`),
  }, app.fetch);

  const modelDir = settings.modelDir ?? TINY_MODEL_DIR;
  if (settings.randomWeights) {
    log(
      `WARNING: MODEL_DIR is not set, so this server runs the tiny RANDOM-WEIGHT test model (${TINY_MODEL_DIR}); ` +
        `its answers are noise. Set MODEL_DIR to an InternVL-Chat-V1.5-Int8 directory for real answers.`,
    );
  }
  log(`Loading model from ${modelDir} ...`);
  const options: LoadEngineOptions = {
    modelDir,
    randomWeights: settings.randomWeights,
    maxImagePixels: settings.maxImagePixels,
    keptKvBytes: settings.gpuKvCacheBytes,
    keptImageBytes: settings.gpuImageCacheBytes,
    visionScratchBytes: settings.visionScratchBytes,
    int8Matmul: settings.int8Matmul,
    kvCacheDtype: settings.kvCacheDtype,
    imageWorkers: settings.imageWorkers ?? undefined,
    imageResize: settings.imageResize,
    thread: settings.engineThread,
    maxBatch: settings.maxBatch,
    joinChunkTokens: settings.joinChunkTokens,
    onProgress: (fraction, what) => slot.progress(fraction, what),
  };
  const loading = Promise.resolve().then(() => loadEngine(options));
  slot.track(loading);
  const loaded = loading.then(
    (engine) =>
      log(
        `Model ready: ${engine.modelInfo.id}${engine.modelInfo.randomWeights ? " (RANDOM WEIGHTS)" : ""}` +
          `, KV cache ${engine.modelInfo.kvCacheDtype ?? "f32"}` +
          (engine instanceof WorkerEngine ? ", running on its own thread" : ""),
      ),
    (err) =>
      log(
        `ERROR: the model failed to load: ${err instanceof Error ? err.message : err}; /health answers 503`,
      ),
  );

  return {
    server,
    slot,
    sessions,
    loaded,
    async close() {
      await server.shutdown();
      sessions.close();
      // An engine still loading is closed once loaded (a second signal to main.ts exits at once).
      const engine = await loading.catch(() => null);
      await engine?.close?.();
    },
  };
}
