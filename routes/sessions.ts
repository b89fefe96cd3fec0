/** POST /v1/sessions, GET /v1/sessions/:id (history), DELETE /v1/sessions/:id. */
import { Hono } from "hono";
import { imageLayoutOf, type Session } from "../src/sessions/session_store.ts";
import { unknownSession } from "./chat.ts";
import { parseOrThrow } from "./errors.ts";
import { parseJsonText } from "./request_body.ts";
import type { Services } from "./services.ts";
import { z } from "zod";

// An empty body, `{}` and no body at all all mean "a new empty session"; fields are reserved for later.
const createSchema = z.strictObject({});

export function sessionRoutes(s: Services): Hono {
  const app = new Hono();

  app.post("/v1/sessions", async (c) => {
    const text = await c.req.text();
    if (text.trim() !== "") parseOrThrow(createSchema, parseJsonText(text));
    const session = await s.sessions.create();
    return c.json(describe(session), 201);
  });

  app.get("/v1/sessions/:id", async (c) => {
    const id = c.req.param("id");
    const session = await s.sessions.get(id, { withImages: false });
    if (!session) throw unknownSession(id);
    return c.json(describe(session));
  });

  app.delete("/v1/sessions/:id", async (c) => {
    const id = c.req.param("id");
    if (!(await s.sessions.delete(id))) throw unknownSession(id);
    return c.json({ id, deleted: true });
  });
  return app;
}

function describe(session: Session) {
  const m = session.meta;
  return {
    id: m.id,
    object: "session",
    created_at: new Date(m.createdAt).toISOString(),
    updated_at: new Date(m.updatedAt).toISOString(),
    expires_at: new Date(m.expiresAt).toISOString(),
    max_num: m.maxNum,
    // Fixed by the first round; null until then.
    image_layout: m.turnCount > 0 ? imageLayoutOf(m) : null,
    images: m.imageRefs.map((ref) => ({ sha256: ref.sha256, bytes: ref.bytes })),
    history: session.history.map(([question, response]) => ({ question, response })),
  };
}
