/**
 * OpenAI-compatible POST /v1/chat/completions and GET /v1/models, for the official clients.
 *
 * Mapping: user/assistant messages become the reference chat's history (pairs) plus the last user
 * question; image_url parts (data URLs only) may appear only in the first user message, because the
 * model takes images with the first question. System and developer messages are IGNORED: InternVL's
 * chat template has its own fixed system prompt and the reference chat() takes no other.
 * Sampling: on when `temperature` > 0 is given (or `do_sample: true`); otherwise greedy, like the reference.
 * Extensions: the reference generation fields, `max_num`, and `image_layout` ("numbered": the prompt of
 * `multi_image_chat`, one block per image of the first user message; default "concat", as `chat`).
 */
import { Hono } from "hono";
import type { ChatResult, HistoryTurn } from "../src/engine/types.ts";
import { InputError } from "../src/errors.ts";
import { parseOrThrow } from "./errors.ts";
import { clientAbort, runGeneration, usageOf } from "./generation.ts";
import { decodeImage } from "./image_input.ts";
import { readJson } from "./request_body.ts";
import {
  type ChatCompletionBody,
  chatCompletionSchema,
  type OpenAiMessage,
  toGenerationConfig,
} from "./schemas.ts";
import type { Services } from "./services.ts";
import { sseFrame, streamGeneration } from "./sse.ts";

const CREATED = Math.floor(Date.now() / 1000);

export function openAiRoutes(s: Services): Hono {
  const app = new Hono();
  const schema = chatCompletionSchema(s.settings);

  app.get("/v1/models", (c) => {
    const info = s.engine.engine.modelInfo;
    return c.json({
      object: "list",
      data: [{
        id: info.id,
        object: "model",
        created: CREATED,
        owned_by: "internvl-edge",
        random_weights: info.randomWeights,
        description: info.randomWeights
          ? `RANDOM WEIGHTS (test fixture): answers are noise. ${info.description}`
          : info.description,
        max_context: info.maxContext,
      }],
    });
  });

  app.post("/v1/chat/completions", async (c) => {
    const engine = s.engine.engine;
    const ticket = s.scheduler.reserve();
    try {
      const body = parseOrThrow(schema, await readJson(c));
      if (body.model !== engine.modelInfo.id) {
        throw new InputError(`Model "${body.model}" is not served here; use "${engine.modelInfo.id}"`, {
          status: 404,
          param: "model",
          code: "model_not_found",
        });
      }
      rejectUnsupported(body);
      const { history, question, imageSources } = toConversation(body.messages);
      const images = imageSources.map(({ url, param }) => decodeImage(url, param, s.settings));
      const generation = toGenerationConfig({
        max_new_tokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
        do_sample: body.do_sample ?? (body.temperature != null && body.temperature > 0),
        temperature: body.temperature != null && body.temperature > 0 ? body.temperature : undefined,
        top_p: body.top_p ?? undefined,
        top_k: body.top_k,
        repetition_penalty: body.repetition_penalty,
        num_beams: body.num_beams,
        seed: body.seed ?? undefined,
      }, s.settings);
      const abort = clientAbort(c);
      const id = `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`;
      const model = engine.modelInfo.id;
      const maxNum = body.max_num ?? s.settings.defaultMaxNum;
      const run = (onText?: (t: string) => void) =>
        runGeneration(
          s,
          ticket,
          abort.signal,
          () =>
            engine.chat({
              question,
              images,
              history,
              maxNum,
              imageLayout: body.image_layout ?? "concat",
              generation,
              signal: abort.signal,
              onText,
            }),
          () => engine.startImagePreparation?.(images, maxNum),
        );
      const finish = (r: ChatResult) =>
        r.outputTokenIds.length >= generation.maxNewTokens ? "length" : "stop";
      const usage = (r: ChatResult) => {
        const u = usageOf(r);
        return { ...u, total_tokens: u.prompt_tokens + u.completion_tokens };
      };

      if (body.stream) {
        const chunk = (delta: object, finish_reason: string | null) =>
          sseFrame({
            id,
            object: "chat.completion.chunk",
            created: Math.floor(Date.now() / 1000),
            model,
            choices: [{ index: 0, delta, finish_reason }],
          });
        let first = true;
        return await streamGeneration(run, {
          delta: (text) => {
            const role = first ? { role: "assistant" } : {};
            first = false;
            return chunk({ ...role, content: text }, null);
          },
          done: (r) => {
            let out = chunk(first ? { role: "assistant", content: "" } : {}, finish(r));
            if (body.stream_options?.include_usage) {
              out += sseFrame({
                id,
                object: "chat.completion.chunk",
                created: Math.floor(Date.now() / 1000),
                model,
                choices: [],
                usage: usage(r),
              });
            }
            return out + sseFrame("[DONE]");
          },
          // The openai client raises APIError for a data frame carrying `error`.
          error: (err) => sseFrame(err),
        }, abort);
      }
      const r = await run();
      return c.json({
        id,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{
          index: 0,
          message: { role: "assistant", content: r.response, refusal: null },
          finish_reason: finish(r),
          logprobs: null,
        }],
        usage: usage(r),
      });
    } finally {
      ticket.release();
    }
  });
  return app;
}

function rejectUnsupported(body: ChatCompletionBody): void {
  const unsupported = (param: string, why: string) =>
    new InputError(`Field '${param}' is not supported: ${why}`, { param, code: "unsupported_parameter" });
  if (body.tools?.length) throw unsupported("tools", "this model has no tool calling");
  if (body.stop != null && (typeof body.stop === "string" || body.stop.length > 0)) {
    throw unsupported("stop", "generation stops at the model's end-of-turn token");
  }
  if (body.frequency_penalty) throw unsupported("frequency_penalty", "use repetition_penalty instead");
  if (body.presence_penalty) throw unsupported("presence_penalty", "use repetition_penalty instead");
}

interface Conversation {
  history: HistoryTurn[];
  question: string;
  imageSources: { url: string; param: string }[];
}

/** messages → reference chat() arguments; see the header comment for the rules. */
export function toConversation(messages: OpenAiMessage[]): Conversation {
  const turns = messages.map((m, i) => ({ m, i })).filter(({ m }) =>
    m.role === "user" || m.role === "assistant"
  );
  if (turns.length === 0) {
    throw new InputError("Field 'messages' has no user message; system messages alone ask nothing", {
      param: "messages",
      code: "invalid_value",
    });
  }
  const history: HistoryTurn[] = [];
  const imageSources: Conversation["imageSources"] = [];
  let question = "";
  turns.forEach(({ m, i }, k) => {
    const expected = k % 2 === 0 ? "user" : "assistant";
    if (m.role !== expected) {
      throw new InputError(
        `Field 'messages[${i}].role' is "${m.role}" but "${expected}" was expected: after system messages, ` +
          `messages must alternate user, assistant, user, … and end with a user message`,
        { param: `messages[${i}].role`, code: "invalid_value" },
      );
    }
    const text = textOf(m, i, k === 0 ? imageSources : null);
    if (m.role === "user") question = text;
    else history.push([question, text]);
  });
  if (turns.length % 2 === 0) {
    const last = turns.at(-1)!.i;
    throw new InputError(
      `Field 'messages[${last}]' is an assistant message; the last message must be from the user`,
      {
        param: `messages[${last}]`,
        code: "invalid_value",
      },
    );
  }
  if (question.trim() === "") {
    const last = turns.at(-1)!.i;
    throw new InputError(`Field 'messages[${last}].content' has no text; ask a question`, {
      param: `messages[${last}].content`,
      code: "invalid_value",
    });
  }
  return { history, question, imageSources };
}

/** The text of a message; image parts go to `images`, or are refused when it is null (not the first round). */
function textOf(m: OpenAiMessage, i: number, images: Conversation["imageSources"] | null): string {
  if (typeof m.content === "string") return m.content;
  const texts: string[] = [];
  m.content.forEach((part, j) => {
    if (part.type === "text") return texts.push(part.text);
    const param = `messages[${i}].content[${j}]`;
    if (m.role !== "user" || images === null) {
      throw new InputError(
        `Field '${param}' is an image outside the first user message; this model takes images only with the ` +
          `first question of a conversation`,
        { param, code: "images_after_first_round" },
      );
    }
    if (!part.image_url.url.startsWith("data:")) {
      throw new InputError(
        `Field '${param}.image_url.url' must be a data URL (data:image/png;base64,...); remote URLs are not ` +
          `fetched`,
        { param: `${param}.image_url.url`, code: "invalid_image_url" },
      );
    }
    images.push({ url: part.image_url.url, param: `${param}.image_url.url` });
  });
  return texts.join("\n");
}
