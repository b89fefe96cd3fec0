import assert from "node:assert/strict";
import { SyntheticFactory, syntheticLanguageWeights } from "../../src/bench/synthetic_weights.ts";
import { InternVLModel } from "../../src/model/internvl.ts";
import { LmRunner } from "../../src/model/lm_runner.ts";
import { caseById, compare, goldenI32, manifest, tinyModel } from "./tiny_fixture.ts";

// A decode step of more rows than the matrix-vector kernels take (8) runs in row groups of at most 8 rows,
// each group's products bound to its rows of the step's activations (rowsView; with LLM.int8 two groups a
// product, each quantized apart). Every row of a 12-row step (groups of 8 and 4) must then give the logits it
// gets alone. Rows differ, so a group reading or writing
// another group's rows shows. README: logits max |Δ| ≤ 1e-3 with f32 math.
const logitTol = 1e-3;
const imageContextId = manifest.tokenizer.special_ids["<IMG_CONTEXT>"];
const rows = 12;
const steps = 2;

/** Logits [rows, V] of the prompt pass and of `steps − 1` teacher-forced steps (`forced[s][b]`). */
async function stepLogits(model: InternVLModel, runner: LmRunner, prompts: number[][], forced: number[][]) {
  const B = prompts.length;
  const next = model.gpu.createTensor("test.next", "i32", [B]);
  const out: Float32Array[] = [];
  const kernels: string[][] = [];
  try {
    const r = model.gpu.recorder("test.prefill");
    const free = runner.recordPrefill(r, prompts, prompts.map((p) => p.map(() => 1)), imageContextId, null);
    r.submit();
    out.push(await model.gpu.readF32(runner.logits));
    free();
    for (let s = 1; s < steps; s++) {
      model.gpu.writeTensor(next, Int32Array.from(forced[s - 1]));
      const rd = model.gpu.recorder("test.decode");
      runner.recordDecode(rd, next);
      kernels.push(rd.recorded.map((d) => d.kernel));
      rd.submit();
      out.push(await model.gpu.readF32(runner.logits));
    }
  } finally {
    next.buffer.destroy();
  }
  return { out, kernels };
}

/** B rows: the case's prompt with its first ids changed a row, and forced ids of each row's own a step. */
function rowInputs(ids: number[], B: number, V: number) {
  return {
    prompts: Array.from({ length: B }, (_, b) => ids.map((id, i) => i < 4 ? (id + 17 * b + i) % V : id)),
    forced: Array.from({ length: steps - 1 }, (_, s) => Array.from({ length: B }, (_, b) => 5 + 31 * b + s)),
  };
}

/** Rows `check` of a grouped run's logits against each row run alone (a runner of one row). */
async function assertRowsAsAlone(
  model: InternVLModel,
  grouped: Float32Array[],
  inputs: ReturnType<typeof rowInputs>,
  check: number[],
  capacity: number,
  what: string,
) {
  const V = grouped[0].length / inputs.prompts.length;
  for (const b of check) {
    const alone = model.newRunner(1, capacity);
    try {
      const one = await stepLogits(model, alone, [inputs.prompts[b]], inputs.forced.map((f) => [f[b]]));
      one.out.forEach((logits, s) => {
        const { maxAbs } = compare(grouped[s].subarray(b * V, (b + 1) * V), logits);
        assert.ok(maxAbs <= logitTol, `${what}, step ${s}, row ${b}: max |Δ| ${maxAbs}`);
      });
    } finally {
      alone.destroy();
    }
  }
}

Deno.test("a step of 12 rows runs in row groups of 8 and 4, each row as it runs alone", async (t) => {
  const tiny = await tinyModel();
  const V = tiny.dims.language.vocab;
  const ids = Array.from(goldenI32(caseById("text_only").input_ids.file));
  const inputs = rowInputs(ids, rows, V);
  // LLM.int8 with a threshold below every activation: every column in f32, so the rows alone agree to the
  // same tolerance as weight-only (at the checkpoint's threshold a row's columns depend on its batch).
  const llmInt8 = InternVLModel.fromWeights(tiny.gpu, tiny.dims, tiny.vision, tiny.projector, tiny.language, {
    mode: "llm-int8",
    threshold: 1e-30,
  });
  try {
    for (const [mode, model] of [["weight-only", tiny], ["llm-int8", llmInt8]] as const) {
      await t.step(mode, async () => {
        const capacity = ids.length + steps;
        const batch = model.newRunner(rows, capacity);
        let grouped;
        try {
          assert.deepEqual(batch.step.rowGroups?.rows, [[0, 8], [8, 4]]);
          grouped = await stepLogits(model, batch, inputs.prompts, inputs.forced);
        } finally {
          batch.destroy();
        }
        // Every product ran on groups, the LM head too: weight-only a group at a time, its groups' logits
        // joined by one gather_rows; with LLM.int8 the two groups of each product, the head's included, in
        // one pass (pairRows), both quantized in one rows pass, the head's rows straight into the logits.
        const L = tiny.dims.language.layers;
        for (const k of grouped.kernels) {
          const count = (name: string) => k.filter((n) => n === name).length;
          assert.equal(count("linear_tiled"), 0);
          assert.equal(count("gather_rows"), mode === "llm-int8" ? 1 : 2); // the last rows (, the join)
          if (mode === "llm-int8") {
            assert.equal(count("matvec_dp4a"), 4 * L + 1);
            // Where the attention splits its keys (not on a CPU adapter), its combine pass scans the groups.
            const scans = count("attention_decode_combine") === L ? 3 : 4;
            assert.equal(count("llm_int8_rows_scan"), scans * L + 1);
          }
        }
        // Each group's first and last rows, and one inside the first.
        await assertRowsAsAlone(model, grouped.out, inputs, [0, 5, 7, 8, 11], capacity, mode);
      });
    }
  } finally {
    llmInt8.releaseScratch();
  }
});

Deno.test("LLM.int8 steps of 9–16 rows run as two even row groups in one product (past 16, a pair of 8 and a third group), each row as it runs alone", async (t) => {
  // Even groups start at any row, which the fixture's FFN width (176: rows of 704 bytes) cannot bind; a
  // language model of random weights at 192 takes them (the same comparison needs no goldens).
  const tiny = await tinyModel();
  const dims = { ...tiny.dims, language: { ...tiny.dims.language, intermediate: 192 } };
  const V = dims.language.vocab;
  const fill = tiny.gpu.recorder("test.fill");
  const factory = new SyntheticFactory(tiny.gpu, fill, 3);
  const language = syntheticLanguageWeights(factory, dims.language);
  fill.submit();
  const model = InternVLModel.fromWeights(tiny.gpu, dims, tiny.vision, tiny.projector, language, {
    mode: "llm-int8",
    threshold: 1e-30,
  });
  const ids = Array.from(goldenI32(caseById("text_only").input_ids.file));
  // The warm-up builds every pair's pipelines (one for each size of a first group).
  const built = new Set<string>();
  const build = model.gpu.pipeline.bind(model.gpu);
  model.gpu.pipeline = (name: string, constants: Record<string, number> = {}) => {
    built.add(name + JSON.stringify(constants));
    return build(name, constants);
  };
  try {
    await model.warmUp(1);
    const warmed = new Set(built);
    for (
      const [B, groups] of [
        [10, [[0, 5], [5, 5]]],
        [12, [[0, 6], [6, 6]]],
        [13, [[0, 7], [7, 6]]],
        [16, [[0, 8], [8, 8]]],
        [17, [[0, 8], [8, 8], [16, 1]]],
        [18, [[0, 8], [8, 8], [16, 2]]],
        [20, [[0, 8], [8, 8], [16, 4]]],
      ] as const
    ) {
      await t.step(`${B} rows`, async () => {
        const inputs = rowInputs(ids, B, V);
        const capacity = ids.length + steps;
        const batch = model.newRunner(B, capacity);
        let grouped;
        try {
          assert.deepEqual(batch.step.rowGroups?.rows, groups);
          built.clear();
          grouped = await stepLogits(model, batch, inputs.prompts, inputs.forced);
          assert.deepEqual([...built].filter((k) => !warmed.has(k)), [], "pipelines built after warmUp");
        } finally {
          batch.destroy();
        }
        // One product a matrix for both groups of a pair (the LM head's too), a third group's own, and one
        // rows pass for all groups — the attention output's in the attention's combine pass, where it splits
        // the keys (not on a CPU adapter).
        const L = dims.language.layers;
        const products = groups.length === 2 ? 4 * L + 1 : 8 * L + 2;
        for (const k of grouped.kernels) {
          const count = (name: string) => k.filter((n) => n === name).length;
          assert.equal(count("matvec_dp4a"), products);
          const scans = count("attention_decode_combine") === L ? 3 : 4;
          assert.equal(count("llm_int8_rows_scan"), scans * L + 1);
          assert.equal(count("gather_rows"), groups.length === 2 ? 1 : 2); // the last rows (, the join)
        }
        const first = groups[1][0];
        await assertRowsAsAlone(
          model,
          grouped.out,
          inputs,
          [0, first - 1, first, B - 1],
          capacity,
          `${B} rows`,
        );
      });
    }
  } finally {
    model.gpu.pipeline = build;
    model.releaseScratch();
    factory.destroyAll();
  }
});
