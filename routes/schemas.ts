/**
 * zod schemas: the single source of truth for what each route accepts. HTTP fields are snake_case;
 * `toGenerationConfig` maps them to the engine's camelCase GenerationConfig.
 */
import { z } from "zod";
import { defaultGenerationConfig, type GenerationConfig, IMAGE_LAYOUTS } from "../src/engine/types.ts";
import type { Settings } from "../src/server/settings.ts";

export const MAX_NUM_LIMIT = 40;
export const MAX_BEAMS = 8;

const number = z.number().refine(Number.isFinite, "must be a finite number");

/** "concat": the reference `chat()` (one image block); "numbered": `multi_image_chat()` (one per image). */
const imageLayout = z.enum(IMAGE_LAYOUTS);

/** Generation fields shared by /v1/chat and /v1/batch_chat (and, in part, by the OpenAI route). */
export function generationFields(settings: Settings) {
  return {
    max_new_tokens: z.int().min(1).max(settings.maxNewTokensLimit).optional(),
    do_sample: z.boolean().optional(),
    temperature: number.min(0).optional(),
    top_p: number.gt(0).max(1).optional(),
    top_k: z.int().min(0).optional(),
    repetition_penalty: number.gt(0).optional(),
    num_beams: z.int().min(1).max(MAX_BEAMS).optional(),
    seed: z.int().min(0).max(2 ** 32 - 1).optional(),
    max_num: z.int().min(1).max(MAX_NUM_LIMIT).optional(),
  };
}

export type GenerationFields = {
  max_new_tokens?: number;
  do_sample?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  repetition_penalty?: number;
  num_beams?: number;
  seed?: number;
};

/** Sampling with temperature 0 divides by zero in the reference; say so instead of returning NaNs. */
function checkSampling(
  value: { do_sample?: boolean; temperature?: number | null },
  ctx: z.RefinementCtx,
): void {
  if (value.do_sample && value.temperature != null && value.temperature <= 0) {
    ctx.addIssue({
      code: "custom",
      path: ["temperature"],
      message: `must be greater than 0 when do_sample is true; got ${value.temperature}`,
      input: value.temperature,
    });
  }
}

export function toGenerationConfig(f: GenerationFields, settings: Settings): GenerationConfig {
  const d = defaultGenerationConfig;
  return {
    maxNewTokens: f.max_new_tokens ?? Math.min(d.maxNewTokens, settings.maxNewTokensLimit),
    doSample: f.do_sample ?? d.doSample,
    temperature: f.temperature ?? d.temperature,
    topP: f.top_p ?? d.topP,
    topK: f.top_k ?? d.topK,
    repetitionPenalty: f.repetition_penalty ?? d.repetitionPenalty,
    numBeams: f.num_beams ?? d.numBeams,
    ...(f.seed === undefined ? {} : { seed: f.seed }),
  };
}

function question(settings: Settings) {
  return z.string().max(settings.maxQuestionChars).refine((q) => q.trim().length > 0, {
    message: "must not be empty; ask a question",
  });
}

function images(settings: Settings) {
  return z.array(z.union([z.string(), z.instanceof(Uint8Array)])).max(settings.maxImagesPerRequest);
}

export function chatSchema(settings: Settings) {
  return z.strictObject({
    question: question(settings),
    images: images(settings).optional(),
    session_id: z.string().min(1).optional(),
    stream: z.boolean().optional(),
    image_layout: imageLayout.optional(),
    ...generationFields(settings),
  }).superRefine(checkSampling);
}
export type ChatBody = z.output<ReturnType<typeof chatSchema>>;

export function batchChatSchema(settings: Settings) {
  return z.strictObject({
    items: z.array(z.strictObject({ question: question(settings), images: images(settings).optional() }))
      .min(1).max(settings.maxBatchItems),
    ...generationFields(settings),
  }).superRefine(checkSampling);
}
export type BatchChatBody = z.output<ReturnType<typeof batchChatSchema>>;

// OpenAI chat completions. Unknown top-level fields are ignored (clients send many optional ones);
// fields we cannot honour with a non-default value are rejected by the route.
const textPart = z.strictObject({ type: z.literal("text"), text: z.string() });
const imagePart = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).optional() }),
});
const contentPart = z.discriminatedUnion("type", [textPart, imagePart]);
export type ContentPart = z.output<typeof contentPart>;

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(contentPart).min(1)]),
  name: z.string().optional(),
});
export type OpenAiMessage = z.output<typeof message>;

export function chatCompletionSchema(settings: Settings) {
  const g = generationFields(settings);
  return z.object({
    model: z.string().min(1),
    messages: z.array(message).min(1),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
    max_tokens: g.max_new_tokens.nullable(),
    max_completion_tokens: g.max_new_tokens.nullable(),
    temperature: number.min(0).max(2).nullish(),
    top_p: g.top_p.nullable(),
    seed: g.seed.nullable(),
    n: z.literal(1).nullish(),
    stop: z.union([z.string(), z.array(z.string())]).nullish(),
    frequency_penalty: number.nullish(),
    presence_penalty: number.nullish(),
    tools: z.array(z.unknown()).nullish(),
    // Extensions: the reference generation fields OpenAI has no name for.
    do_sample: g.do_sample,
    top_k: g.top_k,
    repetition_penalty: g.repetition_penalty,
    num_beams: g.num_beams,
    max_num: g.max_num,
    image_layout: imageLayout.optional(),
  }).superRefine(checkSampling);
}
export type ChatCompletionBody = z.output<ReturnType<typeof chatCompletionSchema>>;
