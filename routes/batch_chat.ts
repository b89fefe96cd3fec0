/** POST /v1/batch_chat — the reference `batch_chat`: several independent questions in one engine call. */
import { Hono } from "hono";
import { parseOrThrow } from "./errors.ts";
import { clientAbort, runGeneration, usageOf } from "./generation.ts";
import { decodeImage } from "./image_input.ts";
import { readJson } from "./request_body.ts";
import { batchChatSchema, toGenerationConfig } from "./schemas.ts";
import type { Services } from "./services.ts";

export function batchChatRoutes(s: Services): Hono {
  const app = new Hono();
  const schema = batchChatSchema(s.settings);

  app.post("/v1/batch_chat", async (c) => {
    const engine = s.engine.engine;
    const ticket = s.scheduler.reserve();
    try {
      const body = parseOrThrow(schema, await readJson(c));
      const items = body.items.map((item, i) => ({
        question: item.question,
        images: (item.images ?? []).map((img, j) => decodeImage(img, `items[${i}].images[${j}]`, s.settings)),
      }));
      const abort = clientAbort(c);
      const maxNum = body.max_num ?? s.settings.defaultMaxNum;
      const results = await runGeneration(
        s,
        ticket,
        abort.signal,
        () => engine.batchChat(items, maxNum, toGenerationConfig(body, s.settings), abort.signal),
        () => {
          const drops = items.map((it, i) =>
            engine.startImagePreparation?.(it.images, maxNum, `items[${i}].images`)
          );
          return () => drops.forEach((drop) => drop?.());
        },
      );
      return c.json({ responses: results.map((r) => r.response), usage: results.map(usageOf) });
    } finally {
      ticket.release();
    }
  });
  return app;
}
