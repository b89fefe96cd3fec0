/**
 * The engine as the server sees it while the model loads: the server listens at once (so /health can
 * say "loading" instead of connection refused) and routes ask the slot for the engine on each request.
 */
import type { ChatEngine } from "../engine/types.ts";
import { InputError } from "../errors.ts";

export type EngineState =
  | { status: "loading"; progress: number; stage: string }
  | { status: "ready"; engine: ChatEngine }
  | { status: "failed"; error: string };

export class EngineSlot {
  #state: EngineState = { status: "loading", progress: 0, stage: "starting" };

  /** Wraps a loaded engine, or one still loading (the promise). */
  static from(engine: ChatEngine | Promise<ChatEngine> | EngineSlot): EngineSlot {
    if (engine instanceof EngineSlot) return engine;
    const slot = new EngineSlot();
    if (engine instanceof Promise) slot.track(engine);
    else slot.#state = { status: "ready", engine };
    return slot;
  }

  get state(): EngineState {
    return this.#state;
  }

  /** Follows a loading promise; a failure is kept for /health and every request. */
  track(loading: Promise<ChatEngine>): void {
    loading.then(
      (engine) => (this.#state = { status: "ready", engine }),
      (err) => (this.#state = { status: "failed", error: err instanceof Error ? err.message : String(err) }),
    );
  }

  /** For loadEngine's onProgress. */
  progress(fraction: number, stage: string): void {
    if (this.#state.status === "loading") this.#state = { status: "loading", progress: fraction, stage };
  }

  /** The engine, or a 503 that says why there is none yet. */
  get engine(): ChatEngine {
    const s = this.#state;
    if (s.status === "ready" && s.engine.fault) {
      throw new InputError(
        `The model engine failed and cannot answer: ${s.engine.fault}; restart the server`,
        {
          status: 503,
          code: "engine_failed",
        },
      );
    }
    if (s.status === "ready") return s.engine;
    if (s.status === "loading") {
      const err = new InputError(
        `The model is still loading (${Math.round(s.progress * 100)}%, ${s.stage}); retry shortly`,
        { status: 503, code: "model_loading" },
      );
      throw Object.assign(err, { retryAfterSeconds: 5 });
    }
    throw new InputError(`The model failed to load: ${s.error}`, { status: 503, code: "model_load_failed" });
  }
}
