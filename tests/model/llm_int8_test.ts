import assert from "node:assert/strict";
import { LmRunner } from "../../src/model/lm_runner.ts";
import type { InternVLModel } from "../../src/model/internvl.ts";
import { caseById, compare, goldenF32, goldenI32, manifest, tinyModel } from "./tiny_fixture.ts";

// INT8_MATMUL=llm-int8 on the tiny model, text-only case (the image path is the same for both modes here).
// Two checks of the whole path (every int8 linear of the language model at ≤ 8 rows, the norms and silu·up
// folded into the row passes, gate|up in one dispatch, the LM head):
//  - with a threshold below every activation, every nonzero column is an "outlier" and goes through the f32
//    side: the model is then the weight-only one up to summation order, so the goldens' 1e-3 holds;
//  - at the checkpoint's threshold (6.0) the activations are rounded to int8 (bitsandbytes' numerics): the
//    logits must move off the weight-only goldens (the path is really taken) but stay near them.
const imageContextId = manifest.tokenizer.special_ids["<IMG_CONTEXT>"];

/** Teacher-forced step logits of `steps` steps of case `id` with the given runner. */
async function stepLogits(
  model: InternVLModel,
  runner: LmRunner,
  ids: number[],
  forced: number[],
  steps: number,
) {
  const next = model.gpu.createTensor("test.next", "i32", [1]);
  const out: Float32Array[] = [];
  try {
    const r = model.gpu.recorder("test.prefill");
    const free = runner.recordPrefill(r, [ids], [ids.map(() => 1)], imageContextId, null);
    r.submit();
    out.push(await model.gpu.readF32(runner.logits));
    free();
    for (let s = 1; s < steps; s++) {
      model.gpu.writeTensor(next, Int32Array.of(forced[s - 1]));
      const rd = model.gpu.recorder("test.decode");
      runner.recordDecode(rd, next);
      rd.submit();
      out.push(await model.gpu.readF32(runner.logits));
    }
  } finally {
    next.buffer.destroy();
  }
  return out;
}

Deno.test("INT8_MATMUL=llm-int8: exact with every column in f32, bitsandbytes-close at threshold 6", async (t) => {
  const model = await tinyModel();
  const c = caseById("text_only");
  const ids = Array.from(goldenI32(c.input_ids.file));
  const golden = goldenF32(c.all_step_logits.file);
  const V = model.dims.language.vocab;
  const steps = 12;
  const runner = (threshold: number) =>
    new LmRunner(
      model.gpu,
      model.language,
      model.dims.language,
      1,
      ids.length + steps,
      "llm-int8",
      threshold,
    );

  await t.step("threshold below every activation: the weight-only goldens within 1e-3", async () => {
    const lm = runner(1e-30);
    try {
      const got = await stepLogits(model, lm, ids, c.generated_ids, steps);
      got.forEach((logits, s) => {
        const { maxAbs } = compare(logits, golden.subarray(s * V, (s + 1) * V));
        assert.ok(maxAbs <= 1e-3, `step ${s}: max |Δ| ${maxAbs}`);
      });
    } finally {
      lm.destroy();
    }
  });

  await t.step(
    "threshold 6: int8 activations move the logits by rounding noise, less as θ falls",
    async () => {
      // Measured on this random-weight model (llvmpipe): mean relative error over 12 steps 0.037 at θ = 6
      // (one step 0.16), 0.0015 at θ = 0.3. Broken scales or outlier columns give errors of order 1.
      const meanRel = async (threshold: number) => {
        const lm = runner(threshold);
        try {
          const got = await stepLogits(model, lm, ids, c.generated_ids, steps);
          const rels = got.map((logits, s) => compare(logits, golden.subarray(s * V, (s + 1) * V)).rel);
          return rels.reduce((a, b) => a + b, 0) / rels.length;
        } finally {
          lm.destroy();
        }
      };
      const at6 = await meanRel(6), atSmall = await meanRel(0.3);
      assert.ok(
        at6 > 1e-3,
        `int8 activations changed nothing (mean relative error ${at6}): the path was not taken`,
      );
      assert.ok(at6 < 0.1, `mean relative error ${at6} at θ = 6 is beyond rounding noise`);
      assert.ok(
        atSmall < at6 / 4,
        `keeping more columns in f32 did not help: ${atSmall} at θ = 0.3 vs ${at6} at 6`,
      );
    },
  );
});
