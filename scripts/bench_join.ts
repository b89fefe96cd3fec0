// How long a running batch's stream stalls when a new conversation with an image joins it, with the
// joiner's prompt pass cut into pieces between the batch's steps (JOIN_CHUNK_TOKENS) or run whole at once (0).
//   deno run -A scripts/bench_join.ts [--model DIR] [--chunks 0,256,64] [--runs 3]
// The running round is sampled (temperature 3, seed 4: all 32 tokens on the tiny fixture); at its first text
// the joiner (the fixture's single_image question and image, 838 prompt ids) arrives. Reported per setting:
// the running stream's longest gap between two texts after the joiner arrived, and the joiner's time to
// first token. Wall clock on whatever adapter there is (llvmpipe: the tiny model only).
import { parseArgs } from "node:util";
import { WebGpuEngine } from "../src/engine/webgpu_engine.ts";
import { defaultGenerationConfig } from "../src/engine/types.ts";
import { caseById, imageFile, modelDir as tinyModelDir } from "../tests/model/tiny_fixture.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { model: { type: "string" }, chunks: { type: "string" }, runs: { type: "string" } },
});
const chunks = (values.chunks ?? "0,256,64").split(",").map(Number);
const runs = Number(values.runs ?? 3);
const modelDir = values.model ?? tinyModelDir;
const engine = await WebGpuEngine.load({ modelDir, randomWeights: !values.model, maxBatch: 4 });
const text = caseById("text_only"), img = caseById("single_image");
const sampled = { ...defaultGenerationConfig, maxNewTokens: 32, doSample: true, temperature: 3, topP: 0.95 };

async function once(chunk: number): Promise<{ gapMs: number; ttftMs: number; joins: number }> {
  engine.joinChunkTokens = chunk;
  engine.kept.clear();
  const times: number[] = [];
  let arrived = 0;
  let joiner: Promise<{ timeToFirstTokenMs: number }> | null = null;
  const joins0 = engine.joins;
  await engine.chat({
    question: text.question,
    images: [],
    history: [],
    maxNum: 6,
    generation: { ...sampled, seed: 4 },
    onText: () => {
      times.push(performance.now());
      if (times.length !== 1) return;
      arrived = performance.now();
      joiner = engine.chat({
        question: img.question,
        images: img.images.map((k: string) => imageFile(k)),
        history: [],
        maxNum: 6,
        generation: { ...sampled, seed: 9 },
      });
    },
  });
  const ttftMs = (await joiner!).timeToFirstTokenMs;
  const after = [arrived, ...times.filter((t) => t > arrived)];
  const gapMs = Math.max(...after.slice(1).map((t, i) => t - after[i]));
  return { gapMs, ttftMs, joins: engine.joins - joins0 };
}

for (const chunk of chunks) await once(chunk); // warm-up: the pipelines of each setting's piece sizes
for (let run = 0; run < runs; run++) {
  for (const chunk of chunks) {
    const r = await once(chunk);
    console.log(
      `JOIN_CHUNK_TOKENS=${chunk}: running stream's longest gap ${r.gapMs.toFixed(0)} ms, ` +
        `joiner's first token ${r.ttftMs.toFixed(0)} ms, joins ${r.joins}`,
    );
  }
}
Deno.exit(0);
