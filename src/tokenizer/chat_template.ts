// Prompt token ids for InternVL-Chat-V1.5, template `internlm2-chat` (OpenGVLab/InternVL @4d48dce
// internvl_chat/internvl/conversation.py, SeparatorStyle.MPT) as `InternVLChatModel.chat`, `multi_image_chat`
// and `batch_chat` build it, then `tokenizer(query)`.
//
// DIFF: the reference pastes `<img><IMG_CONTEXT>…</img>` into the query TEXT and lets the tokenizer find it.
// Here the image block is inserted as ids and every text the user controls is encoded with the image tokens
// treated as plain text, so typing "<IMG_CONTEXT>" can never create (or shift) an image slot. Other added
// tokens (`<|im_start|>`, `<|im_end|>`, …) are still split out of user text exactly as the reference does;
// a history answer containing "<|im_start|>" is re-tokenized into that token, as in the reference.
// Text segments are concatenated before encoding, so chunk boundaries (and thus ids) match the reference.
import type { ChatTokenizer } from "./chat_tokenizer.ts";

/** V1.5 system message (InternVL 2.0 changed it; do not use that one here). */
export const INTERNLM2_CHAT_SYSTEM_MESSAGE = "You are an AI assistant whose name is InternLM (书生·浦语).";
/** Image tokens per 448×448 tile after pixel shuffle: (448/14)² × 0.5². */
export const NUM_IMAGE_TOKEN = 256;

export interface ChatPromptInput {
  question: string;
  /** earlier rounds as [question as typed, answer as returned], oldest first */
  history?: readonly (readonly [string, string])[];
  /** tiles (thumbnail included) of each image, in order; empty or absent: text-only */
  imageTileCounts?: readonly number[];
  /**
   * "concat": `chat()` with the images' tiles concatenated (torch.cat) → ONE block;
   * "numbered": `multi_image_chat()` → `<image i> (图i):` + one block per image.
   */
  imageLayout?: "concat" | "numbered";
  numImageToken?: number;
  systemMessage?: string;
}

export interface BatchPromptItem {
  question: string;
  /** tiles of this sample's image; 0: no image block */
  tileCount: number;
}

export interface BatchPromptIds {
  /** [B][L], left-padded with the pad id */
  inputIds: number[][];
  /** [B][L], 0 on padding */
  attentionMask: number[][];
}

/** A prompt piece: text to tokenize (image tokens stay text) or ids inserted as they are. */
type Segment = string | readonly number[];

/** The ids `chat()` / `multi_image_chat()` feed to `generate()`, `<s>` included. */
export function buildChatPromptIds(tok: ChatTokenizer, input: ChatPromptInput): number[] {
  const numImageToken = input.numImageToken ?? NUM_IMAGE_TOKEN;
  checkCount(numImageToken, "numImageToken", 1);
  const tiles = input.imageTileCounts ?? [];
  tiles.forEach((t, i) => checkCount(t, `imageTileCounts[${i}]`, 0));
  const history = input.history ?? [];

  // `chat()` prefixes the block to the question of the first round only; later rounds re-render that
  // first user turn (its history entry) with the block.
  const block = imageBlock(tok, tiles, input.imageLayout ?? "concat", numImageToken);
  const withImages = (q: string): Segment[] => (block.length > 0 ? [...block, "\n" + q] : [q]);
  const turns: [role: "user" | "assistant", message: Segment[] | null][] = [];
  history.forEach(([q, a], i) => {
    turns.push(["user", i === 0 ? withImages(q) : [q]]);
    turns.push(["assistant", [a]]);
  });
  turns.push(["user", history.length === 0 ? withImages(input.question) : [input.question]]);
  turns.push(["assistant", null]);

  const { imStart, imEnd } = tok.specialIds;
  // MPT: system + sep, then role + message + sep per message; an empty message emits only its role.
  const segments: Segment[] = [
    [imStart],
    "system\n" + (input.systemMessage ?? INTERNLM2_CHAT_SYSTEM_MESSAGE),
    [
      imEnd,
    ],
  ];
  for (const [role, message] of turns) {
    segments.push([imStart], role + "\n");
    if (message && !isEmptyMessage(message)) segments.push(...message, [imEnd]);
  }
  // add_bos_token=True, add_eos_token=False in the V1.5 tokenizer_config.json
  return [tok.specialIds.bos, ...encodeSegments(tok, segments)];
}

/** `batch_chat()`: one fresh single-round prompt per item, left-padded (`padding_side='left'`). */
export function buildBatchPromptIds(
  tok: ChatTokenizer,
  items: readonly BatchPromptItem[],
  opts: { numImageToken?: number; systemMessage?: string } = {},
): BatchPromptIds {
  // DIFF: the reference emits an empty `<img></img>` block for an image count of 0; we emit none, so a
  // text-only item gets the same ids as a text-only chat().
  const prompts = items.map((it) =>
    buildChatPromptIds(tok, {
      question: it.question,
      imageTileCounts: it.tileCount > 0 ? [it.tileCount] : [],
      ...opts,
    })
  );
  return leftPadded(prompts, tok.specialIds.pad);
}

/** Prompts of several rows left-padded to the longest, with the attention mask (0 on the pads). */
export function leftPadded(prompts: readonly number[][], pad: number): BatchPromptIds {
  const width = Math.max(0, ...prompts.map((p) => p.length));
  return {
    inputIds: prompts.map((p) => [...new Array(width - p.length).fill(pad), ...p]),
    attentionMask: prompts.map((
      p,
    ) => [...new Array(width - p.length).fill(0), ...new Array(p.length).fill(1)]),
  };
}

function imageBlock(
  tok: ChatTokenizer,
  tiles: readonly number[],
  layout: "concat" | "numbered",
  numImageToken: number,
): Segment[] {
  const { img, imgEnd, imgContext } = tok.specialIds;
  const ids = (n: number) => [img, ...new Array<number>(numImageToken * n).fill(imgContext), imgEnd];
  if (tiles.length === 0) return [];
  if (layout === "concat") {
    const total = tiles.reduce((a, b) => a + b, 0);
    return total > 0 ? [ids(total)] : [];
  }
  return tiles.flatMap((n, i) => [`<image ${i + 1}> (图${i + 1}):`, ids(n)]);
}

function isEmptyMessage(message: Segment[]): boolean {
  return message.every((s) => s.length === 0);
}

/** Joins adjacent text segments, then encodes each text run without BOS and without image tokens. */
function encodeSegments(tok: ChatTokenizer, segments: Segment[]): number[] {
  const out: number[] = [];
  let text = "";
  const flush = () => {
    if (text.length > 0) {
      out.push(...tok.encode(text, { addBos: false, addEos: false, allowImageTokens: false }));
    }
    text = "";
  };
  for (const s of segments) {
    if (typeof s === "string") {
      text += s;
    } else {
      flush();
      out.push(...s);
    }
  }
  flush();
  return out;
}

function checkCount(n: number, name: string, min: number): void {
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`${name} is ${n}; it must be an integer ≥ ${min}`);
  }
}
