// Reads the tiny-internvl fixture's tokenizer goldens (see tests/fixtures/tiny-internvl/README.md).

export const MODEL_DIR = new URL("../fixtures/tiny-internvl/model", import.meta.url).pathname;
const GOLDENS = new URL("../fixtures/tiny-internvl/goldens/", import.meta.url);

export interface Probe {
  text: string;
  input_ids: number[];
  pieces: string[];
  decode_skip_special: string;
  decode_keep_special: string;
}

export interface ChatCase {
  id: string;
  kind: "chat" | "text" | "batch";
  question: string;
  history?: [string, string][];
  num_tiles: number;
  prompt: string;
  input_ids_rle: (number | [number, number])[];
  input_ids: { file: string; shape: number[] };
  response: string;
  response_ids: number[];
  generated_ids: number[];
  generated_text_skip_special: string;
}

export interface BatchSample {
  question: string;
  num_tiles: number;
  generated_ids: number[];
  response: string;
}

export interface BatchCase {
  id: string;
  kind: "batch";
  questions: string[];
  image_counts: number[];
  pad_token_id: number;
  input_ids: { file: string; shape: [number, number] };
  attention_mask: { file: string; shape: [number, number] };
  samples: BatchSample[];
}

export interface Manifest {
  model: { num_image_token: number; system_message: string; vocab_size: number };
  tokenizer: {
    special_ids: Record<string, number>;
    sp_add_dummy_prefix: boolean;
    sp_split_digits: boolean;
    sp_byte_fallback: boolean;
    probes: Probe[];
  };
  cases: (ChatCase | BatchCase)[];
}

export const manifest: Manifest = JSON.parse(Deno.readTextFileSync(new URL("manifest.json", GOLDENS)));

export const chatCases = manifest.cases.filter((c): c is ChatCase => c.kind !== "batch");
export const batchCase = manifest.cases.find((c): c is BatchCase => c.kind === "batch")!;

export function readI32(file: string): number[] {
  const bytes = Deno.readFileSync(new URL(file, GOLDENS));
  return Array.from(new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
}

/** Expands `[id, count]` runs of `input_ids_rle`. */
export function expandRle(rle: (number | [number, number])[]): number[] {
  return rle.flatMap((x) => (Array.isArray(x) ? new Array<number>(x[1]).fill(x[0]) : [x]));
}

/** The history as chat() stored it has the image block pasted in; strip it to what the user typed. */
export function typedQuestion(storedQuestion: string): string {
  return storedQuestion.replace(/^<img>.*?<\/img>\n/s, "");
}

/** Deterministic PRNG (mulberry32) so randomized tests are reproducible. */
export { rng } from "../../src/ref/random.ts";
