/**
 * A controlled ChatEngine for HTTP tests: the answer is a pure function of the prompt, so tests can
 * predict every response. It honours maxNewTokens (one word = one token), streams through onText, stops
 * on abort, and throws InputError for images that are not PNG or JPEG, like the real engine.
 */
import type {
  BatchItem,
  ChatEngine,
  ChatRequest,
  ChatResult,
  GenerationConfig,
  ImageSummary,
  ModelInfo,
} from "../../src/engine/types.ts";
import { InputError } from "../../src/errors.ts";

export const FAKE_MODEL_ID = "internvl-fake";
const STOP_TOKEN = 2;
const IMAGE_TOKENS_PER_TILE = 256;

export interface FakeEngineOptions {
  randomWeights?: boolean;
  /** Awaited before each token is emitted; tests use it to hold a generation mid-way. */
  beforeToken?: (index: number, req: ChatRequest) => Promise<void> | void;
  /** Throws a plain Error (a server fault) after this many tokens. */
  failAfterTokens?: number;
  /** Called when a route starts a request's image preparation (startImagePreparation). */
  onPrepare?: (p: EarlyPreparation) => void;
}

/** A startImagePreparation call as the fake saw it. */
export interface EarlyPreparation {
  images: Uint8Array[];
  maxNum: number;
  param: string;
  /** How many chat calls had started when it came. */
  callsBefore: number;
  dropped: boolean;
}

/** The full answer the fake gives, before max_new_tokens truncation. */
export function fakeAnswer(
  question: string,
  rounds: number,
  images: Uint8Array[],
  maxNum: number,
  g: GenerationConfig,
) {
  const tiles = images.reduce((n, img) => n + tilesOf(img, maxNum), 0);
  const sampling = g.doSample ? ` sampled at temperature ${g.temperature} with seed ${g.seed ?? "none"}` : "";
  return `Round ${rounds} answer to: ${question} (${images.length} images, ${tiles} tiles${sampling})`;
}

export class FakeEngine implements ChatEngine {
  readonly modelInfo: ModelInfo;
  /** Every request the engine received, in order. */
  readonly calls: ChatRequest[] = [];
  /** Generations that ended because their signal aborted. */
  aborted = 0;
  /** Set by tests to play an engine whose GPU failed. */
  fault: string | null = null;
  /** Every image preparation routes started ahead of a request's turn, in order. */
  readonly prepared: EarlyPreparation[] = [];
  #options: FakeEngineOptions;

  constructor(options: FakeEngineOptions = {}) {
    this.#options = options;
    this.modelInfo = {
      id: FAKE_MODEL_ID,
      randomWeights: options.randomWeights ?? false,
      description: "Deterministic fake engine for HTTP tests",
      maxContext: 8192,
    };
  }

  startImagePreparation(images: Uint8Array[], maxNum: number, param = "images"): () => void {
    const p = { images, maxNum, param, callsBefore: this.calls.length, dropped: false };
    this.prepared.push(p);
    this.#options.onPrepare?.(p);
    return () => (p.dropped = true);
  }

  async chat(req: ChatRequest): Promise<ChatResult> {
    const started = performance.now();
    this.calls.push(req);
    req.images.forEach((img, i) => checkImage(img, i));
    const summaries: ImageSummary[] = req.images.map((img) => {
      const tiles = tilesOf(img, req.maxNum);
      return { grid: [tiles, 1], tiles };
    });
    const full = fakeAnswer(req.question, req.history.length + 1, req.images, req.maxNum, req.generation);
    const words = full.split(" ").map((w, i, all) => (i < all.length - 1 ? `${w} ` : w));
    const emitted = words.slice(0, req.generation.maxNewTokens);
    let response = "";
    let firstTokenMs = 0;
    for (const [i, piece] of emitted.entries()) {
      await this.#options.beforeToken?.(i, req);
      if (req.signal?.aborted) {
        this.aborted++;
        throw req.signal.reason;
      }
      if (this.#options.failAfterTokens !== undefined && i >= this.#options.failAfterTokens) {
        throw new Error("Simulated GPU device loss");
      }
      if (i === 0) firstTokenMs = performance.now() - started;
      response += piece;
      req.onText?.(piece);
    }
    const truncated = emitted.length < words.length;
    const promptWords = [...req.history.flat(), req.question].join(" ").split(/\s+/).length;
    const tiles = summaries.reduce((n, s) => n + s.tiles, 0);
    return {
      response,
      history: [...req.history, [req.question, response]],
      promptTokenIds: Array.from(
        { length: promptWords + tiles * IMAGE_TOKENS_PER_TILE + 10 },
        (_, i) => i % 800,
      ),
      outputTokenIds: [...emitted.map((_, i) => 100 + i), ...(truncated ? [] : [STOP_TOKEN])],
      images: summaries,
      timeToFirstTokenMs: firstTokenMs,
    };
  }

  async batchChat(items: BatchItem[], maxNum: number, generation: GenerationConfig, signal?: AbortSignal) {
    const results: ChatResult[] = [];
    for (const item of items) {
      results.push(await this.chat({ ...item, history: [], maxNum, generation, signal }));
    }
    return results;
  }
}

function checkImage(bytes: Uint8Array, index: number): void {
  const png = bytes.length > 33 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47 &&
    String.fromCharCode(...bytes.subarray(12, 16)) === "IHDR" &&
    String.fromCharCode(...bytes.subarray(bytes.length - 8, bytes.length - 4)) === "IEND";
  const jpeg = bytes.length > 4 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff &&
    bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9;
  if (!png && !jpeg) {
    throw new InputError(`Image ${index} is not a valid PNG or JPEG file (corrupt or truncated)`, {
      param: `images[${index}]`,
      code: "invalid_image",
    });
  }
}

/** Dynamic tiling, roughly: one tile per started 448-pixel block, capped by maxNum, plus a thumbnail. */
function tilesOf(bytes: Uint8Array, maxNum: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 448, height = 448;
  if (bytes[0] === 0x89 && bytes.length >= 24) [width, height] = [view.getUint32(16), view.getUint32(20)];
  const blocks = Math.min(maxNum, Math.ceil(width / 448) * Math.ceil(height / 448));
  return blocks > 1 ? blocks + 1 : 1;
}
