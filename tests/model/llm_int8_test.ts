import assert from "node:assert/strict";
import { preprocessImage } from "../../src/image/pixel_values.ts";
import { Recorder } from "../../src/gpu/recorder.ts";
import { LmRunner } from "../../src/model/lm_runner.ts";
import { InternVLModel } from "../../src/model/internvl.ts";
import type { Int8Matmul } from "../../src/model/int8_matmul.ts";
import { caseById, compare, goldenF32, goldenI32, imageFile, manifest, tinyModel } from "./tiny_fixture.ts";
import { minRowsForSquares } from "../../src/ops/matvec_dp4a.ts";
import { snapshotTap } from "../../src/model/vision.ts";

// INT8_MATMUL=llm-int8 on the tiny model: the text-only case through the language model (the prompt through
// the LLM.int8 GEMM, decode steps through the ≤ 8-row passes with the norms and silu·up folded in and gate|up
// in one dispatch, the LM head) and img1 through the vision encoder and projector (GEMM). Two checks each:
//  - with a threshold below every activation, every nonzero column is an "outlier" and goes through the f32
//    side: the model is then the weight-only one up to summation order, so the goldens' 1e-3 holds;
//  - at the checkpoint's threshold (6.0) the activations are rounded to int8 (bitsandbytes' numerics): the
//    logits must move off the weight-only goldens (the path is really taken) but stay near them.
const imageContextId = manifest.tokenizer.special_ids["<IMG_CONTEXT>"];

/** Teacher-forced step logits ([rows, V] a step) of `steps` steps, every row the same prompt. */
async function stepLogits(
  model: InternVLModel,
  runner: LmRunner,
  ids: number[],
  forced: number[],
  steps: number,
  rows = 1,
) {
  const next = model.gpu.createTensor("test.next", "i32", [rows]);
  const out: Float32Array[] = [];
  try {
    const r = model.gpu.recorder("test.prefill");
    const prompts = Array.from({ length: rows }, () => ids);
    const free = runner.recordPrefill(r, prompts, prompts.map((p) => p.map(() => 1)), imageContextId, null);
    r.submit();
    out.push(await model.gpu.readF32(runner.logits));
    free();
    for (let s = 1; s < steps; s++) {
      model.gpu.writeTensor(next, new Int32Array(rows).fill(forced[s - 1]));
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
  const runner = (threshold: number, rows = 1) =>
    new LmRunner(
      model.gpu,
      model.language,
      model.dims.language,
      rows,
      ids.length + steps,
      { mode: "llm-int8", threshold },
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
    "the fewest rows whose norms take the products' Σout²: the goldens within 1e-3 in every row",
    async () => {
      // At ≥ minRowsForSquares rows, wo and w2 leave each workgroup's Σout² and the next norm adds those.
      const rows = minRowsForSquares;
      const lm = runner(1e-30, rows);
      try {
        const got = await stepLogits(model, lm, ids, c.generated_ids, 4, rows);
        got.forEach((logits, s) => {
          for (let b = 0; b < rows; b++) {
            const { maxAbs } = compare(
              logits.subarray(b * V, (b + 1) * V),
              golden.subarray(s * V, (s + 1) * V),
            );
            assert.ok(maxAbs <= 1e-3, `step ${s}, row ${b}: max |Δ| ${maxAbs}`);
          }
        });
      } finally {
        lm.destroy();
      }
    },
  );

  await t.step("threshold 6: the prompt's first layer goes through the LLM.int8 GEMM", async () => {
    // The prompt (> 8 tokens) is one tiled pass: its layer-0 output must differ from weight-only's.
    const layer0 = async (lm: LmRunner) => {
      const { tap, taken } = snapshotTap(model.gpu, (name, layer) => name === "lm.layer" && layer === 0);
      const r = model.gpu.recorder("test.prefill");
      const free = lm.recordPrefill(r, [ids], [ids.map(() => 1)], imageContextId, null, tap);
      r.submit();
      const got = await model.gpu.readF32(taken.get("lm.layer:0")!);
      free();
      taken.get("lm.layer:0")!.buffer.destroy();
      lm.destroy();
      return got;
    };
    assert.ok(ids.length > 8, "a prompt of more than 8 tokens");
    const exact = await layer0(model.newRunner(1, ids.length + 1));
    const { rel } = compare(await layer0(runner(6)), exact);
    assert.ok(rel > 1e-6 && rel < 0.05, `layer 0 relative error ${rel} against weight-only`);
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

Deno.test("INT8_MATMUL=llm-int8: the vision encoder and projector, exact with every column in f32", async (t) => {
  const tiny = await tinyModel();
  const { gpu, dims, vision, projector, language } = tiny;
  const img = await preprocessImage(imageFile("img1"), { maxNum: 6, maxPixels: 1e8 });
  const golden = goldenF32(manifest.images.img1.vit_embeds.file);
  const embeds = async (threshold: number) => {
    const m = InternVLModel.fromWeights(gpu, dims, vision, projector, language, {
      mode: "llm-int8",
      threshold,
    });
    const out = m.encodeImages(img.pixelValues, img.tiles);
    const got = await gpu.readF32(out);
    out.buffer.destroy();
    return compare(got, golden);
  };
  await t.step("threshold below every activation: the goldens within the f32 tolerance", async () => {
    const { maxAbs, rel } = await embeds(1e-30);
    assert.ok(maxAbs <= 1e-4 && rel <= 1e-5, `max |Δ| ${maxAbs}, rel ${rel}`);
  });
  await t.step("threshold 6: moved by int8 rounding, not more", async () => {
    const { rel } = await embeds(6);
    assert.ok(rel > 1e-5 && rel < 0.1, `relative error ${rel} against the weight-only embeddings`);
  });
});

Deno.test("INT8_MATMUL=llm-int8-prefill: LLM.int8 for the prompt pass only, weight-only decode steps", async () => {
  const model = await tinyModel();
  const c = caseById("text_only");
  const ids = Array.from(goldenI32(c.input_ids.file));
  const golden = goldenF32(c.all_step_logits.file);
  const V = model.dims.language.vocab;
  const { gpu, dims } = model;
  const lm = (threshold: number) =>
    new LmRunner(gpu, model.language, dims.language, 1, ids.length + 4, {
      mode: "llm-int8-prefill",
      threshold,
    });
  // Every column in f32: the goldens within 1e-3 (the prompt's GEMM and the weight-only steps wired right).
  const exact = lm(1e-30);
  try {
    assert.equal(exact.step.llmInt8, null, "decode steps have no LLM.int8 rows path");
    const got = await stepLogits(model, exact, ids, c.generated_ids, 4);
    got.forEach((logits, s) => {
      const { maxAbs } = compare(logits, golden.subarray(s * V, (s + 1) * V));
      assert.ok(maxAbs <= 1e-3, `step ${s}: max |Δ| ${maxAbs}`);
    });
  } finally {
    exact.destroy();
  }
  // At θ = 6 the prompt's rounding reaches the logits; the steps after it run the exact kernels.
  const rounded = lm(6);
  try {
    const [first] = await stepLogits(model, rounded, ids, c.generated_ids, 1);
    const { rel } = compare(first, golden.subarray(0, V));
    assert.ok(rel > 1e-5 && rel < 0.05, `prompt logits relative error ${rel}`);
  } finally {
    rounded.destroy();
  }
});

Deno.test("INT8_MATMUL=llm-int8-batched: one and two rows run as llm-int8-prefill, three as llm-int8", async () => {
  // The mode picks each pass's path by its rows: one or two rows (a lone request's steps, its prompt's head,
  // a pair's steps) weight-only, more LLM.int8. So its logits must be those of the mode that runs the same
  // kernels, bit for bit, and those two references must differ from each other (or the comparison would show
  // nothing).
  const model = await tinyModel();
  const c = caseById("text_only");
  const ids = Array.from(goldenI32(c.input_ids.file));
  const { gpu, dims } = model;
  const steps = 4;
  const logits = async (mode: Int8Matmul, rows: number, check?: (runner: LmRunner) => void) => {
    const lm = new LmRunner(gpu, model.language, dims.language, rows, ids.length + steps, {
      mode,
      threshold: 6,
    });
    try {
      check?.(lm);
      return await stepLogits(model, lm, ids, c.generated_ids, steps, rows);
    } finally {
      lm.destroy();
    }
  };
  const alone = await logits("llm-int8-batched", 1, (lm) => assert.equal(lm.step.llmInt8, null));
  const prefill = await logits("llm-int8-prefill", 1);
  alone.forEach((got, s) => assert.deepEqual(got, prefill[s], `one row, step ${s}`));
  const two = await logits("llm-int8-batched", 2, (lm) => assert.equal(lm.step.llmInt8, null));
  const twoPrefill = await logits("llm-int8-prefill", 2);
  two.forEach((got, s) => assert.deepEqual(got, twoPrefill[s], `two rows, step ${s}`));
  const three = await logits("llm-int8-batched", 3, (lm) => assert.notEqual(lm.step.llmInt8, null));
  const llmInt8 = await logits("llm-int8", 3);
  three.forEach((got, s) => assert.deepEqual(got, llmInt8[s], `three rows, step ${s}`));
  const threePrefill = await logits("llm-int8-prefill", 3);
  const { rel } = compare(three[steps - 1], threePrefill[steps - 1]);
  assert.ok(rel > 1e-6, `three rows: LLM.int8 steps against weight-only ones, relative difference ${rel}`);
});

Deno.test("INT8_MATMUL=llm-int8-prefill: a model's prompts share one GEMM scratch, as if each had its own", async () => {
  const tiny = await tinyModel();
  const { gpu, dims } = tiny;
  const model = InternVLModel.fromWeights(
    gpu,
    dims,
    tiny.vision,
    tiny.projector,
    tiny.language,
    { mode: "llm-int8-prefill", threshold: 6 },
  );
  const ids = Array.from(goldenI32(caseById("text_only").input_ids.file));
  const prompt = async (runner: LmRunner, p: number[]) => {
    try {
      const r = gpu.recorder("test.prompt");
      const free = runner.recordPrefill(r, [p], [p.map(() => 1)], imageContextId, null);
      r.submit();
      const logits = await gpu.readF32(runner.logits);
      free();
      return logits;
    } finally {
      runner.destroy();
    }
  };
  try {
    // Longest first: the shorter prompt then finds the longer one's outlier columns in the shared scratch.
    for (const p of [ids, ids.slice(0, ids.length - 5), ids.slice(3)]) {
      const shared = await prompt(model.newRunner(1, p.length + 1), p);
      const own = await prompt(
        new LmRunner(gpu, model.language, dims.language, 1, p.length + 1, model.matmul),
        p,
      );
      assert.deepEqual(shared, own, `${p.length} tokens`);
    }
  } finally {
    model.releaseScratch();
  }
});

Deno.test("INT8_MATMUL=llm-int8-prefill: a follow-up round is one LLM.int8 pass over the kept cache", async () => {
  // Weight-only runs a short continued prompt as 8-row chunks (matrix-vector kernels, decode attention);
  // the LLM.int8 modes run it as one pass: the GEMM and the prompt attention from the kept position. With
  // every column in f32 both must give the same logits.
  const model = await tinyModel();
  const { gpu, dims } = model;
  const ids = Array.from(goldenI32(caseById("text_only").input_ids.file));
  const [first, followup] = [ids.slice(0, 65), ids.slice(65)]; // 65 and 16 tokens (maxChunkedPrompt)
  const kernels: string[] = [];
  class KernelLog extends Recorder {
    override dispatch(kernel: string, opts: Parameters<Recorder["dispatch"]>[1]): void {
      kernels.push(kernel);
      super.dispatch(kernel, opts);
    }
  }
  const logits = async (runner: LmRunner) => {
    try {
      for (const [i, p] of [first, followup].entries()) {
        kernels.length = 0;
        const r = new KernelLog(gpu, `test.round${i}`);
        const free = runner.recordPrefill(r, [p], [p.map(() => 1)], imageContextId, null);
        r.submit();
        await gpu.sync("test.round");
        free();
      }
      return { logits: await gpu.readF32(runner.logits), followupKernels: new Set(kernels) };
    } finally {
      runner.destroy();
    }
  };
  const cap = ids.length + 1;
  const exact = await logits(new LmRunner(gpu, model.language, dims.language, 1, cap));
  const int8 = await logits(
    new LmRunner(gpu, model.language, dims.language, 1, cap, { mode: "llm-int8-prefill", threshold: 1e-30 }),
  );
  // The chunks' decode attention and the pass's prompt attention: on a CPU adapter both are the prompt
  // attention's rows form (src/model/language.ts).
  const chunkAttention = gpu.isFallbackAdapter ? "attention_prefill_rows" : "attention_decode";
  const promptAttention = gpu.isFallbackAdapter ? "attention_prefill_rows" : "attention_prefill";
  assert.ok(exact.followupKernels.has(chunkAttention) && !exact.followupKernels.has("linear_dp4a"));
  for (const k of ["linear_dp4a", promptAttention]) assert.ok(int8.followupKernels.has(k), k);
  assert.ok(!int8.followupKernels.has("attention_decode"));
  const { maxAbs } = compare(int8.logits, exact.logits);
  assert.ok(maxAbs <= 1e-3, `follow-up logits: max |Δ| ${maxAbs}`);
});
