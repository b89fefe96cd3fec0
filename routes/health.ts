/** GET /health (no API key: load balancers probe it) and GET /metrics (Prometheus text). */
import { Hono } from "hono";
import type { Services } from "./services.ts";

export function healthRoutes(s: Services): Hono {
  const app = new Hono();

  // 200 only once the model is loaded, so a load balancer sends traffic only to ready instances.
  app.get("/health", (c) => {
    const state = s.engine.state;
    if (state.status === "ready" && state.engine.fault) {
      return c.json({ status: "failed", error: state.engine.fault }, 503);
    }
    if (state.status === "ready") {
      const info = state.engine.modelInfo;
      return c.json({
        status: "ok",
        model: info.id,
        random_weights: info.randomWeights,
        queue_depth: s.scheduler.depth,
      });
    }
    if (state.status === "loading") {
      return c.json({ status: "loading", progress: state.progress, stage: state.stage }, 503, {
        "Retry-After": "5",
      });
    }
    return c.json({ status: "failed", error: state.error }, 503);
  });

  app.get(
    "/metrics",
    (c) => c.text(s.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }),
  );
  return app;
}
