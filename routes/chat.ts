/**
 * POST /v1/chat — the reference `model.chat` over HTTP, with sessions.
 *
 * A round with a session_id takes its history and first-round images from the store. Rounds of one
 * session run one after another (per-session lock here; the versionstamp check in the store guards
 * against other instances and answers 409), so concurrent rounds never lose a turn.
 */
import { Hono } from "hono";
import type { ChatResult } from "../src/engine/types.ts";
import { InputError } from "../src/errors.ts";
import { imageLayoutOf, type Session } from "../src/sessions/session_store.ts";
import { parseOrThrow } from "./errors.ts";
import { clientAbort, runGeneration, usageOf } from "./generation.ts";
import { decodeImage } from "./image_input.ts";
import { readJsonOrForm } from "./request_body.ts";
import { type ChatBody, chatSchema, toGenerationConfig } from "./schemas.ts";
import type { Services } from "./services.ts";
import { sseFrame, streamGeneration } from "./sse.ts";

const FORM_FIELDS = {
  numbers: [
    "max_num",
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "num_beams",
    "seed",
  ],
  booleans: ["do_sample", "stream"],
  lists: ["images"],
};

export function chatRoutes(s: Services): Hono {
  const app = new Hono();
  const schema = chatSchema(s.settings);

  app.post("/v1/chat", async (c) => {
    const engine = s.engine.engine; // 503 while loading, before anything else
    const ticket = s.scheduler.reserve(); // 503 when full, before any image is read
    try {
      const body = parseOrThrow(schema, await readJsonOrForm(c, FORM_FIELDS));
      const images = (body.images ?? []).map((img, i) => decodeImage(img, `images[${i}]`, s.settings));
      const abort = clientAbort(c);

      // One round, from loading the session to saving the turn. `onText` streams pieces.
      const round = async (
        onText?: (t: string) => void,
      ): Promise<{ result: ChatResult; session: Session }> => {
        const session = body.session_id === undefined
          ? s.sessions.draft()
          : await loadSession(s, body.session_id);
        if (images.length > 0 && session.meta.turnCount > 0) {
          throw new InputError(
            `Session ${session.meta.id} already has ${session.meta.turnCount} round(s); images can only be sent ` +
              `in the first round of a session (the model takes images with the first question, as the ` +
              `reference chat() does). Start a new session to ask about new images`,
            { param: "images", code: "images_after_first_round" },
          );
        }
        const firstRound = session.meta.turnCount === 0;
        const maxNum = body.max_num ?? session.meta.maxNum ?? s.settings.defaultMaxNum;
        const imageLayout = firstRound ? body.image_layout ?? "concat" : imageLayoutOf(session.meta);
        if (body.image_layout !== undefined && body.image_layout !== imageLayout) {
          // The layout shapes the first turn's image block, which every later round re-renders.
          throw new InputError(
            `Field 'image_layout' is "${body.image_layout}" but session ${session.meta.id} was started with ` +
              `"${imageLayout}"; later rounds re-render the first round's images the same way. Omit ` +
              `image_layout or send "${imageLayout}"`,
            { param: "image_layout", code: "image_layout_mismatch" },
          );
        }
        const result = await runGeneration(
          s,
          ticket,
          abort.signal,
          () =>
            engine.chat({
              question: body.question,
              images: firstRound ? images : session.images,
              history: session.history,
              maxNum,
              imageLayout,
              generation: toGenerationConfig(body, s.settings),
              signal: abort.signal,
              onText,
            }),
          // A later round's images are usually in its kept KV cache: only a first round's are decoded early.
          () => firstRound ? engine.startImagePreparation?.(images, maxNum) : undefined,
        );
        const turn = result.history.at(-1) ?? [body.question, result.response];
        const saved = await s.sessions.appendTurn(
          session,
          turn,
          firstRound ? { images, maxNum, imageLayout } : undefined,
        );
        return { result, session: saved };
      };
      const serialized = (onText?: (t: string) => void) =>
        body.session_id === undefined
          ? round(onText)
          : s.sessionLocks.run(body.session_id, () => round(onText));

      if (body.stream) {
        return await streamGeneration(serialized, {
          delta: (text) => sseFrame({ text }, "delta"),
          done: ({ result, session }) => sseFrame(chatAnswer(body, result, session), "done"),
          error: (err) => sseFrame(err, "error"),
        }, abort);
      }
      const { result, session } = await serialized();
      return c.json(chatAnswer(body, result, session));
    } finally {
      ticket.release(); // no-op once it ran
    }
  });
  return app;
}

function chatAnswer(_body: ChatBody, result: ChatResult, session: Session) {
  return { response: result.response, session_id: session.meta.id, usage: usageOf(result) };
}

async function loadSession(s: Services, id: string): Promise<Session> {
  const session = await s.sessions.get(id);
  if (!session) throw unknownSession(id);
  return session;
}

export function unknownSession(id: string): InputError {
  const shown = id.length > 40 ? `${id.slice(0, 37)}...` : id;
  return new InputError(
    `Session "${shown}" does not exist or has expired; create one with POST /v1/sessions or omit session_id`,
    { status: 404, param: "session_id", code: "session_not_found" },
  );
}
