/// <reference lib="deno.worker" />
/**
 * The engine's own thread (ENGINE_THREAD=worker, the default of `deno task serve`): it loads a WebGpuEngine
 * and runs the calls that src/engine/worker_engine.ts forwards. Deno's `mapAsync` blocks the thread that
 * calls it until the GPU has run all it was given (docs/PERF.md v26), so on the serving thread every
 * readback of a generation stopped HTTP handling for up to a few decode steps; here it stops only this one.
 */
import {
  type EngineStatus,
  type FromEngine,
  type ToEngine,
  type WireChatRequest,
  type WorkerLoadOptions,
} from "./engine_protocol.ts";
import { fromWire, toWire } from "../wire_error.ts";
import { noEngineStats } from "./types.ts";
import { WebGpuEngine } from "./webgpu_engine.ts";

let engine: WebGpuEngine | null = null;
/** Calls running, by id: their abort controllers. */
const running = new Map<number, AbortController>();
/** Images of prepare messages, by prep id: the arrays the engine's early work is keyed by, and its drop. */
const prepared = new Map<number, { images: Uint8Array[]; drop: () => void }>();

function send(message: FromEngine): void {
  self.postMessage(message);
}

function status(): EngineStatus {
  return { fault: engine?.fault ?? null, stats: engine?.stats() ?? noEngineStats };
}

function imagesOf(request: { prep: number | null; images: Uint8Array[] }): Uint8Array[] {
  if (request.prep === null) return request.images;
  const entry = prepared.get(request.prep);
  // The serving thread drops a preparation only after its request has ended.
  if (!entry) throw new Error(`engine thread: images ${request.prep} were dropped before their request`);
  return entry.images;
}

/** Runs one call and answers it with "done" or "failed"; the call's abort controller lives meanwhile. */
function answer(
  id: number,
  run: (signal: AbortSignal) => Promise<Extract<FromEngine, { type: "done" }>["result"]>,
) {
  const abort = new AbortController();
  running.set(id, abort);
  Promise.resolve().then(() => run(abort.signal)).then(
    (result) => send({ type: "done", id, result, status: status() }),
    (err) => send({ type: "failed", id, error: toWire(err), status: status() }),
  ).finally(() => running.delete(id));
}

function chat(id: number, request: WireChatRequest): void {
  answer(id, (signal) => {
    const { prep: _prep, streams, ...rest } = request;
    return engine!.chat({
      ...rest,
      images: imagesOf(request),
      signal,
      onText: streams ? (delta) => send({ type: "text", id, delta }) : undefined,
    });
  });
}

async function load(options: WorkerLoadOptions): Promise<void> {
  try {
    engine = await WebGpuEngine.load({
      ...options,
      onProgress: (fraction, what) => send({ type: "progress", fraction, what }),
    });
  } catch (err) {
    send({ type: "loadFailed", error: toWire(err) });
    return;
  }
  // A device lost between requests would otherwise show only with the next request's answer.
  engine.model.gpu.device.lost.then(() => send({ type: "status", status: status() }));
  send({ type: "loaded", modelInfo: engine.modelInfo, status: status() });
}

self.onmessage = (e: MessageEvent<ToEngine>) => {
  const m = e.data;
  switch (m.type) {
    case "load":
      load(m.options);
      return;
    case "chat":
      chat(m.id, m.request);
      return;
    case "batchChat":
      answer(m.id, (signal) => {
        const items = m.items.map(({ prep: _prep, ...item }, i) => ({
          ...item,
          images: imagesOf(m.items[i]),
        }));
        return engine!.batchChat(items, m.maxNum, m.generation, signal);
      });
      return;
    case "prepare": {
      const drop = engine!.startImagePreparation(m.images, m.maxNum, m.param);
      prepared.set(m.prep, { images: m.images, drop });
      return;
    }
    case "drop":
      prepared.get(m.prep)?.drop();
      prepared.delete(m.prep);
      return;
    case "abort":
      running.get(m.id)?.abort(fromWire(m.reason));
      return;
    case "close":
      // Mesa's llvmpipe may crash when a live device is torn down with its thread; destroy it first. The
      // thread then ends itself: NVIDIA's driver crashed the process (SIGSEGV) when it exited just after
      // `Worker.terminate()` (docs/PERF.md v27).
      engine?.model.gpu.destroy();
      engine = null;
      send({ type: "closed" });
      self.close();
      return;
  }
};
