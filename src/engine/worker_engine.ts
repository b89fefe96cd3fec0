/**
 * A ChatEngine whose WebGpuEngine runs on a thread of its own (src/engine/engine_worker.ts), so that the
 * GPU's blocking waits (Deno's `mapAsync` holds its thread until the queue is empty) never stop the HTTP
 * server, and HTTP work never delays the next decode step. Calls, streamed text, aborts and errors cross as
 * messages (src/engine/engine_protocol.ts); a request's images are copied once.
 */
import {
  type EngineStatus,
  type FromEngine,
  type ToEngine,
  type WorkerLoadOptions,
} from "./engine_protocol.ts";
import { fromWire, toWire } from "../wire_error.ts";
import type { LoadEngineOptions } from "./load_engine.ts";
import type {
  BatchItem,
  ChatEngine,
  ChatRequest,
  ChatResult,
  EngineStats,
  GenerationConfig,
  ModelInfo,
} from "./types.ts";
import { noEngineStats } from "./types.ts";

interface Call {
  resolve: (result: ChatResult | ChatResult[]) => void;
  reject: (err: Error) => void;
  onText?: (delta: string) => void;
}

/** The engine thread's entry; tests pass another script that speaks the same messages. */
export const engineWorkerUrl = new URL("./engine_worker.ts", import.meta.url);

export class WorkerEngine implements ChatEngine {
  #modelInfo: ModelInfo | null = null;
  #status: EngineStatus = { fault: null, stats: noEngineStats };
  /** Set when the engine's thread itself failed (an uncaught error) or was closed. */
  #threadFault: string | null = null;
  #nextId = 1;
  readonly #calls = new Map<number, Call>();
  /** Image arrays sent ahead by startImagePreparation, until dropped. */
  readonly #prepared = new Map<Uint8Array[], number>();
  #loading: { resolve: () => void; reject: (err: Error) => void } | null = null;
  #onProgress: LoadEngineOptions["onProgress"];
  #closed: (() => void) | null = null;

  private constructor(private readonly worker: Worker, onProgress: LoadEngineOptions["onProgress"]) {
    this.#onProgress = onProgress;
    worker.onmessage = (e: MessageEvent<FromEngine>) => this.#receive(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault(); // the serving thread stays up and answers 503 (EngineSlot reads `fault`)
      this.#fail(`the engine's thread failed: ${e.message}`);
    };
    worker.onmessageerror = () => this.#fail("the engine's thread sent a message that could not be read");
  }

  /** Starts the engine's thread and loads the model there; rejects with the load's error. */
  static async load(options: LoadEngineOptions, url: URL = engineWorkerUrl): Promise<WorkerEngine> {
    const { onProgress, thread: _thread, ...rest } = options;
    const engine = new WorkerEngine(new Worker(url.href, { type: "module" }), onProgress);
    const loaded = new Promise<void>((resolve, reject) => engine.#loading = { resolve, reject });
    engine.#post({ type: "load", options: rest satisfies WorkerLoadOptions });
    try {
      await loaded;
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  get modelInfo(): ModelInfo {
    if (!this.#modelInfo) throw new Error("WorkerEngine: the model is not loaded");
    return this.#modelInfo;
  }

  get fault(): string | null {
    return this.#threadFault ?? this.#status.fault;
  }

  /** The engine's counters as of its last answer. */
  stats(): EngineStats {
    return { ...this.#status.stats };
  }

  /** Requests whose images the engine had prepared before their turn (as WebGpuEngine.earlyImageHits). */
  get earlyImageHits(): number {
    return this.#status.stats.earlyImageHits;
  }

  startImagePreparation(images: Uint8Array[], maxNum: number, param = "images"): () => void {
    if (images.length === 0 || this.#prepared.has(images) || this.#threadFault) return () => {};
    const prep = this.#nextId++;
    this.#prepared.set(images, prep);
    this.#post({ type: "prepare", prep, images, maxNum, param });
    return () => {
      if (this.#prepared.get(images) !== prep) return;
      this.#prepared.delete(images);
      this.#post({ type: "drop", prep });
    };
  }

  chat(req: ChatRequest): Promise<ChatResult> {
    const { signal, onText, images, ...rest } = req;
    return this.#call<ChatResult>(signal, onText, (id) => ({
      type: "chat",
      id,
      request: { ...rest, ...this.#wireImages(images), streams: onText !== undefined },
    }));
  }

  batchChat(
    items: BatchItem[],
    maxNum: number,
    generation: GenerationConfig,
    signal?: AbortSignal,
  ): Promise<ChatResult[]> {
    const wire = items.map((item) => ({ question: item.question, ...this.#wireImages(item.images) }));
    return this.#call<ChatResult[]>(
      signal,
      undefined,
      (id) => ({ type: "batchChat", id, items: wire, maxNum, generation }),
    );
  }

  /**
   * Ends the engine's thread: it destroys its GPU device and closes itself. Calls still running reject. Only
   * a thread that does not answer within `graceMs` (or has failed) is terminated from here: on an H100 a
   * process that exited just after `Worker.terminate()` crashed in NVIDIA's driver (SIGSEGV).
   */
  async close(graceMs = 5000): Promise<void> {
    const alive = !this.#threadFault;
    this.#fail("the engine was closed");
    let answered = false;
    if (alive) {
      this.#post({ type: "close" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#closed = () => (answered = true, resolve())),
        new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs)),
      ]);
      clearTimeout(timer);
    }
    if (!answered) this.worker.terminate();
  }

  #call<T extends ChatResult | ChatResult[]>(
    signal: AbortSignal | undefined,
    onText: ((delta: string) => void) | undefined,
    message: (id: number) => ToEngine,
  ): Promise<T> {
    if (this.#threadFault) return Promise.reject(new Error(this.#threadFault));
    try {
      signal?.throwIfAborted();
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => this.#post({ type: "abort", id, reason: toWire(signal!.reason) });
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = () => signal?.removeEventListener("abort", onAbort);
      this.#calls.set(id, {
        resolve: (r) => (settle(), resolve(r as T)),
        reject: (e) => (settle(), reject(e)),
        onText,
      });
      this.#post(message(id));
    });
  }

  /** A request's images as sent: by their prep id when startImagePreparation sent them already. */
  #wireImages(images: Uint8Array[]): { images: Uint8Array[]; prep: number | null } {
    const prep = this.#prepared.get(images) ?? null;
    return { images: prep === null ? images : [], prep };
  }

  #post(message: ToEngine): void {
    this.worker.postMessage(message);
  }

  #receive(m: FromEngine): void {
    switch (m.type) {
      case "progress":
        this.#onProgress?.(m.fraction, m.what);
        return;
      case "loaded":
        this.#modelInfo = m.modelInfo;
        this.#status = m.status;
        this.#loading?.resolve();
        this.#loading = null;
        return;
      case "loadFailed":
        this.#loading?.reject(fromWire(m.error));
        this.#loading = null;
        return;
      case "text":
        this.#calls.get(m.id)?.onText?.(m.delta);
        return;
      case "status":
        this.#status = m.status;
        return;
      case "closed":
        this.#closed?.();
        return;
      case "done":
      case "failed": {
        this.#status = m.status;
        const call = this.#calls.get(m.id);
        this.#calls.delete(m.id);
        if (m.type === "done") call?.resolve(m.result);
        else call?.reject(fromWire(m.error));
        return;
      }
    }
  }

  /** The thread is gone: the load and every call waiting on it fail with `why`. */
  #fail(why: string): void {
    this.#threadFault ??= why;
    const err = new Error(why);
    this.#loading?.reject(err);
    this.#loading = null;
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
  }
}
