/**
 * createApp(deps): the whole HTTP API as a Hono app. Everything it needs is passed in, so tests can
 * run it with a controlled engine and an in-memory KV, and main.ts with the real ones.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { routePath } from "hono/route";
import { Scheduler } from "../engine/scheduler.ts";
import type { ChatEngine } from "../engine/types.ts";
import { InputError } from "../errors.ts";
import { KeyedMutex } from "../sessions/session_lock.ts";
import type { SessionStore } from "../sessions/session_store.ts";
import { apiKeyAuth } from "../../routes/auth.ts";
import { batchChatRoutes } from "../../routes/batch_chat.ts";
import { chatRoutes } from "../../routes/chat.ts";
import { handleError } from "../../routes/errors.ts";
import { healthRoutes } from "../../routes/health.ts";
import { openAiRoutes } from "../../routes/openai.ts";
import type { Services } from "../../routes/services.ts";
import { sessionRoutes } from "../../routes/sessions.ts";
import { EngineSlot } from "./engine_slot.ts";
import { Metrics } from "./metrics.ts";
import type { Settings } from "./settings.ts";

export interface AppDeps {
  /** A loaded engine, one still loading (the server answers 503 until it resolves), or a slot. */
  engine: ChatEngine | Promise<ChatEngine> | EngineSlot;
  sessions: SessionStore;
  settings: Settings;
  /** Defaults to a FIFO of settings.queueSize places. */
  scheduler?: Scheduler;
  /** Defaults to a fresh registry; pass one to read counters in tests. */
  metrics?: Metrics;
}

/** The engine's own counters (EngineStats) as /metrics counters, once it is loaded and keeps them. */
function engineCounters(slot: EngineSlot): Record<string, { help: string; value: number; type: "counter" }> {
  const state = slot.state;
  const stats = state.status === "ready" ? state.engine.stats?.() : undefined;
  if (!stats) return {};
  const counter = (help: string, value: number) => ({ help, value, type: "counter" as const });
  return {
    internvl_batched_rounds_total: counter(
      "Chat rounds generated as rows of a batch with other requests (MAX_BATCH).",
      stats.batchedRounds,
    ),
    internvl_batch_joins_total: counter(
      "Times a running generation paused so that waiting chat rounds could join it.",
      stats.joins,
    ),
    internvl_interleaved_joins_total: counter(
      "New conversations whose prompt pass started in pieces beside a running batch (JOIN_CHUNK_TOKENS).",
      stats.interleavedJoins,
    ),
    internvl_kv_reuse_hits_total: counter(
      "Rounds that continued a conversation's KV cache kept on the GPU.",
      stats.keptHits,
    ),
    internvl_kv_reuse_misses_total: counter(
      "Rounds that found no kept KV cache to continue.",
      stats.keptMisses,
    ),
    internvl_early_image_hits_total: counter(
      "Requests whose images were decoded while they waited for the GPU, then used.",
      stats.earlyImageHits,
    ),
    internvl_kv_prefix_copies_total: counter(
      "New conversations that started from a copy of what a kept conversation shares with them: its image block (same pictures), or 16+ text ids.",
      stats.keptPrefixCopies,
    ),
    internvl_image_cache_hits_total: counter(
      "Rounds whose image embeddings were kept on the GPU from an earlier request (no decode, no vision encoder).",
      stats.keptImageHits,
    ),
    internvl_image_cache_misses_total: counter(
      "Rounds with images that found no kept embeddings and ran the vision encoder.",
      stats.keptImageMisses,
    ),
  };
}

export function createApp(deps: AppDeps): Hono {
  const scheduler = deps.scheduler ??
    new Scheduler({ maxQueue: deps.settings.queueSize, maxRunning: deps.settings.maxBatch });
  const engine = EngineSlot.from(deps.engine);
  const metrics = deps.metrics ?? new Metrics();
  metrics.gauges = () => ({
    internvl_queue_depth: {
      help: "Requests waiting for the engine plus the one running.",
      value: scheduler.depth,
    },
    internvl_model_ready: {
      help: "1 once the model is loaded.",
      value: engine.state.status === "ready" ? 1 : 0,
    },
    ...engineCounters(engine),
  });
  const s: Services = {
    engine,
    sessions: deps.sessions,
    settings: deps.settings,
    scheduler,
    metrics,
    sessionLocks: new KeyedMutex(),
  };

  const app = new Hono();
  app.onError(handleError);
  app.notFound((c) =>
    handleError(
      new InputError(`No route ${c.req.method} ${c.req.path}; see the README for the API`, {
        status: 404,
        code: "unknown_route",
      }),
      c,
    )
  );

  app.use(async (c, next) => {
    await next();
    const matched = routePath(c, -1);
    const route = matched === "" || matched.endsWith("*") ? "unmatched" : matched;
    metrics.requests.inc({ route, method: c.req.method, status: String(c.res.status) });
    if (c.res.status >= 400) {
      const code = c.res.headers.get("x-error-code") ?? "unknown";
      metrics.errors.inc({ route, code });
    }
  });
  app.use(apiKeyAuth(deps.settings.apiKey));
  app.use(bodyLimit({
    maxSize: deps.settings.maxBodyBytes,
    onError: () => {
      throw new InputError(
        `Request body is larger than ${deps.settings.maxBodyBytes} bytes (MAX_BODY_BYTES); send smaller images`,
        { status: 413, code: "body_too_large" },
      );
    },
  }));

  for (const group of [healthRoutes, chatRoutes, sessionRoutes, batchChatRoutes, openAiRoutes]) {
    app.route("/", group(s));
  }
  return app;
}
