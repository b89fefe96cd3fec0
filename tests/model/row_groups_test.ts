import assert from "node:assert/strict";
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

Deno.test("a step of 12 rows runs in row groups of 8 and 4, each row as it runs alone", async (t) => {
  const tiny = await tinyModel();
  const V = tiny.dims.language.vocab;
  const ids = Array.from(goldenI32(caseById("text_only").input_ids.file));
  // Row b: the case's prompt with its first ids changed, and forced ids of its own.
  const prompts = Array.from(
    { length: rows },
    (_, b) => ids.map((id, i) => i < 4 ? (id + 17 * b + i) % V : id),
  );
  const forced = Array.from(
    { length: steps - 1 },
    (_, s) => Array.from({ length: rows }, (_, b) => 5 + 31 * b + s),
  );
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
          grouped = await stepLogits(model, batch, prompts, forced);
        } finally {
          batch.destroy();
        }
        // Every product ran on groups, the LM head too (its groups' logits joined by one gather_rows); with
        // LLM.int8 the two groups of each layer's product in one pass (pairRows), the head a group at a time.
        for (const k of grouped.kernels) {
          assert.equal(k.filter((n) => n === "linear_tiled").length, 0);
          assert.equal(k.filter((n) => n === "gather_rows").length, 2); // the last rows, then the join
          if (mode === "llm-int8") {
            assert.equal(k.filter((n) => n === "matvec_dp4a").length, 4 * tiny.dims.language.layers + 2);
          }
        }
        // Each group's first and last rows, and one inside the first.
        for (const b of [0, 5, 7, 8, 11]) {
          const alone = model.newRunner(1, capacity);
          try {
            const one = await stepLogits(model, alone, [prompts[b]], forced.map((f) => [f[b]]));
            one.out.forEach((logits, s) => {
              const { maxAbs } = compare(grouped.out[s].subarray(b * V, (b + 1) * V), logits);
              assert.ok(maxAbs <= logitTol, `${mode}, step ${s}, row ${b}: max |Δ| ${maxAbs}`);
            });
          } finally {
            alone.destroy();
          }
        }
      });
    }
  } finally {
    llmInt8.releaseScratch();
  }
});
