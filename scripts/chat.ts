// deno task chat --model DIR [--image PATH]... [--max-num N] [--image-layout concat|numbered]
//                [--max-new-tokens N] [--history FILE] [--do-sample] [--temperature T] [--top-p P]
//                [--top-k K] [--repetition-penalty R] [--num-beams N] [--seed S] [--dry-run] [--json] QUESTION
// Mirrors the model card's `model.chat(tokenizer, pixel_values, question, generation_config, history)`;
// `--image-layout numbered` gives the prompt of `multi_image_chat(..., image_counts=...)` instead.
import { parseArgs } from "node:util";
import { InputError } from "../src/errors.ts";
import { exitWithoutTeardown, openLibC } from "../src/gpu/exit_without_teardown.ts";
import {
  defaultGenerationConfig,
  type GenerationConfig,
  type HistoryTurn,
  IMAGE_LAYOUTS,
  type ImageLayout,
} from "../src/engine/types.ts";
import { preprocessImage } from "../src/image/pixel_values.ts";
import { loadModelConfig } from "../src/weights/config.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { buildChatPromptIds } from "../src/tokenizer/chat_template.ts";

const usage = `usage: deno task chat --model DIR [--image PATH]... [--max-num N]
       [--image-layout concat|numbered] [--max-new-tokens N] [--history FILE] [--do-sample]
       [--temperature T] [--top-p P] [--top-k K] [--repetition-penalty R] [--num-beams N] [--seed S]
       [--dry-run] [--json] QUESTION
  --image-layout  concat (default): the images' tiles in one <img> block, as chat();
                  numbered: "<image i> (图i):" and a block per image, as multi_image_chat()`;

function fail(message: string): never {
  console.error(`chat: ${message}\n${usage}`);
  Deno.exit(2);
}

function numberFlag(name: string, value: string | undefined, integer: boolean, min: number, max = Infinity) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    fail(
      `--${name} must be ${integer ? "an integer" : "a number"} from ${min}${
        max < Infinity ? ` to ${max}` : ""
      }, got "${value}"`,
    );
  }
  return n;
}

function layoutFlag(value: string | undefined): ImageLayout {
  if (value === undefined) return "concat";
  if (!(IMAGE_LAYOUTS as readonly string[]).includes(value)) {
    fail(`--image-layout must be one of ${IMAGE_LAYOUTS.join(", ")}, got "${value}"`);
  }
  return value as ImageLayout;
}

async function readHistory(path: string): Promise<HistoryTurn[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    fail(`--history ${path}: ${(e as Error).message}`);
  }
  const ok = Array.isArray(parsed) &&
    parsed.every((t) => Array.isArray(t) && t.length === 2 && t.every((s) => typeof s === "string"));
  if (!ok) fail(`--history ${path} must be a JSON array of [question, answer] string pairs`);
  return parsed as HistoryTurn[];
}

function progressBar(fraction: number, what: string) {
  const width = 30, filled = Math.round(fraction * width);
  const line = `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${
    (fraction * 100).toFixed(0).padStart(3)
  }% ${what}`;
  Deno.stderr.writeSync(new TextEncoder().encode(line.padEnd(70) + (fraction >= 1 ? "\n" : "")));
}

async function main() {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      image: { type: "string", multiple: true, default: [] },
      "max-num": { type: "string" },
      "image-layout": { type: "string" },
      "max-new-tokens": { type: "string" },
      history: { type: "string" },
      "do-sample": { type: "boolean", default: false },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "top-k": { type: "string" },
      "repetition-penalty": { type: "string" },
      "num-beams": { type: "string" },
      seed: { type: "string" },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (!values.model) fail("--model DIR is required");
  if (positionals.length !== 1) fail("give exactly one QUESTION (quote it)");
  const question = positionals[0];
  const modelDir = values.model;
  const maxNum = numberFlag("max-num", values["max-num"], true, 1, 40) ?? 6;
  const imageLayout = layoutFlag(values["image-layout"]);
  const generation: GenerationConfig = {
    ...defaultGenerationConfig,
    maxNewTokens: numberFlag("max-new-tokens", values["max-new-tokens"], true, 1) ?? 512,
    doSample: values["do-sample"],
    temperature: numberFlag("temperature", values.temperature, false, 1e-6) ?? 1,
    topP: numberFlag("top-p", values["top-p"], false, 1e-6, 1) ?? 1,
    topK: numberFlag("top-k", values["top-k"], true, 0) ?? 50,
    repetitionPenalty: numberFlag("repetition-penalty", values["repetition-penalty"], false, 1e-6) ?? 1,
    numBeams: numberFlag("num-beams", values["num-beams"], true, 1, 8) ?? 1,
    seed: numberFlag("seed", values.seed, true, 0),
  };
  const history = values.history ? await readHistory(values.history) : [];
  const images: Uint8Array[] = [];
  for (const path of values.image) {
    try {
      images.push(await Deno.readFile(path));
    } catch (e) {
      fail(`--image ${path}: ${(e as Error).message}`);
    }
  }

  if (values["dry-run"]) {
    const config = await loadModelConfig(modelDir);
    const tokenizer = await loadTokenizer(modelDir);
    const summaries = [];
    for (const bytes of images) {
      const p = await preprocessImage(bytes, {
        maxNum,
        maxPixels: 50_000_000,
        imageSize: config.tiling.imageSize,
      });
      summaries.push({ grid: [p.grid[0], p.grid[1]], tiles: p.tiles });
    }
    const promptIds = buildChatPromptIds(tokenizer, {
      question,
      history,
      imageTileCounts: summaries.map((s) => s.tiles),
      imageLayout,
      numImageToken: config.numImageToken,
    });
    if (values.json) console.log(JSON.stringify({ prompt_token_ids: promptIds, images: summaries }));
    else console.log(`${promptIds.length} prompt tokens; images: ${JSON.stringify(summaries)}`);
    return;
  }

  const { WebGpuEngine } = await import("../src/engine/webgpu_engine.ts");
  // One question: compile only the pipelines it runs (the server's warm-up builds every decode-sized one).
  const engine = await WebGpuEngine.load({ modelDir, onProgress: progressBar, warmUp: false });
  const encoder = new TextEncoder();
  const result = await engine.chat({
    question,
    images,
    history,
    maxNum,
    imageLayout,
    generation,
    onText: values.json ? undefined : (delta) => Deno.stdout.writeSync(encoder.encode(delta)),
  });
  if (values.json) {
    console.log(JSON.stringify({
      response: result.response,
      prompt_token_ids: result.promptTokenIds,
      output_token_ids: result.outputTokenIds,
      images: result.images,
    }));
  } else {
    Deno.stdout.writeSync(encoder.encode("\n"));
  }
}

// Opened before the model loads: the clean exit must not depend on anything that could fail later.
const libc = openLibC();
try {
  await main();
  exitWithoutTeardown(libc, 0);
} catch (e) {
  if (
    e instanceof InputError || (e as Error).name === "ModelFileError" || (e as Error).name === "ConfigError"
  ) {
    console.error(`chat: ${(e as Error).message}`);
    exitWithoutTeardown(libc, 2);
    Deno.exit(2);
  }
  throw e;
}
