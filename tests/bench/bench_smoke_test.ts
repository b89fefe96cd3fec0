// Runs `deno task bench --tiny` end to end as CI does (the same code path as the full-size bench, tiny
// shapes) and checks the results document.
import assert from "node:assert/strict";
import { headlineKeys } from "../../src/bench/report.ts";
import { probePython } from "../../src/bench/torch_sections.ts";
import { decodeCost } from "../../src/bench/model_cost.ts";
import { benchShapes } from "../../src/bench/shapes.ts";

const root = new URL("../../", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Doc = Record<string, any>;

async function bench(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ doc: Doc; stdout: string }> {
  const dir = await Deno.makeTempDir({ prefix: "bench_smoke_" });
  const out = `${dir}/tmp.json`;
  try {
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["task", "bench", "--tiny", "--out", out, ...args],
      cwd: root,
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(res.stdout), stderr = new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, `bench exited with ${res.code}:\n${stderr.slice(-3000)}`);
    return { doc: JSON.parse(await Deno.readTextFile(out)), stdout };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const isNum = (v: unknown) => typeof v === "number" && Number.isFinite(v);

Deno.test("bench --tiny runs every section and writes the documented keys", async () => {
  // No bound on its wall time here: speed lives in the bench's own figures, and a 2-core CI machine under
  // other load took 58 s for what takes 40 s alone.
  const { doc, stdout } = await bench([]);
  for (const k of headlineKeys) assert.ok(k in doc, `missing key ${k}`);
  for (const [name, s] of Object.entries(doc.sections as Record<string, Doc>)) {
    // torch is only added by --torch; everything else must run on llvmpipe
    assert.equal(s.status, "ok", `section ${name}: ${s.status} ${s.error ?? s.reason ?? ""}`);
  }
  assert.ok(isNum(doc.wall_s) && doc.wall_s > 0, `the run's own duration: ${doc.wall_s}`);
  assert.equal(typeof doc.card, "string");
  assert.ok(!Number.isNaN(Date.parse(doc.date)));
  assert.equal(doc.scale, "tiny");
  assert.equal(doc.tilings, "none");
  assert.ok(["timestamp-query", "wall-clock"].includes(doc.timing_method));
  for (
    const k of [
      "copy_GBps",
      "weight_fill_ms",
      "decode_ms_b1_ctx512",
      "decode_ms_b1_ctx4096",
      "batch4_tokens_per_s",
      "batch8_tokens_per_s",
      "loop_tokens_per_s",
      "vit_projector_ms_1tiles",
      "vit_projector_ms_7tiles",
      "vit_projector_ms_13tiles",
      "prefill_ms_1800",
      "ttft_cold_ms_7tiles",
      "ttft_image_preprocess_ms",
      "ttft_cold_from_jpeg_ms_7tiles",
      "ttft_warm_followup_ms",
      "ttft_kept_image_ms_7tiles",
      "ttft_shared_image_block_ms",
      "ttft_text_cold_ms_1800",
      "ttft_shared_text_prefix_ms",
    ]
  ) assert.ok(isNum(doc[k]) && doc[k] > 0, `${k} = ${doc[k]}`);
  assert.equal(doc.ttft_cold_from_jpeg_ms_7tiles, doc.sections.ttft.ttft_from_jpeg_ms);
  assert.match(doc.sections.ttft.image, /^JPEG 640×480/);
  assert.ok(Number.isInteger(doc.dispatches_per_decode_step) && doc.dispatches_per_decode_step > 10);
  assert.equal(doc.submits_per_decode_step, 1);
  // The follow-up round found the kept conversation (the bench throws otherwise) and was timed.
  assert.equal(doc.sections.ttft.followup_new_tokens, 31);
  // The long text's branch copied all the kept conversation shares with it.
  assert.equal(doc.sections.ttft.text_shared_tokens, doc.sections.ttft.text_long_tokens - 30);
  // A newcomer joined running rows with its whole pass at once and in pieces beside them (the rows kept
  // making tokens meanwhile, its encoder a layer a piece on the tiny model).
  for (const chunk of benchShapes("tiny").joinChunkTokens) {
    for (const k of [`join_rows_longest_gap_ms_chunk_${chunk}`, `join_first_token_ms_chunk_${chunk}`]) {
      assert.ok(isNum(doc[k]) && doc[k] > 0, `${k} = ${doc[k]}`);
    }
  }
  const pieces = doc.sections.join.chunk_256 as Doc;
  assert.equal(pieces.vision_layers_per_piece, 1);
  assert.ok(pieces.rows_steps_beside >= 8, `rows' steps beside the pieces: ${pieces.rows_steps_beside}`);
  assert.equal(doc.weight_load_ms, null);
  // No PyTorch without --torch: its keys stay null rather than absent.
  for (const k of ["torch_decode_ms_eager", "torch_decode_ms_cudagraph"]) assert.equal(doc[k], null);
  if (doc.timing_method === "timestamp-query") {
    assert.ok(isNum(doc.gemv_bw_fraction) && doc.gemv_bw_fraction > 0);
    assert.ok(isNum(doc.gpu_idle_ms_between_steps) && doc.gpu_idle_ms_between_steps >= 0);
    // What the medians hide: the slowest step and the idle time between steps, consistent with them.
    const b8 = doc.sections.batch.b8_ctx512 as Doc;
    assert.ok(b8.gpu_span_ms_max >= b8.gpu_span_ms_median, `span max ${b8.gpu_span_ms_max}`);
    assert.ok(b8.gpu_idle_ms_total >= b8.gpu_idle_ms_between_steps_max);
    assert.ok(b8.gpu_idle_ms_between_steps_max >= b8.gpu_idle_ms_between_steps_median);
    const kernels = doc.sections.kernels.kernels as Doc[];
    assert.ok(kernels.some((k) => k.kernel === "linear_matvec"));
    // The follow-up round's pass as the ttft section runs it: its 31 new ids in one pass.
    assert.equal(doc.sections.kernels.followup_pass.tokens, doc.sections.ttft.followup_new_tokens);
    assert.ok(doc.sections.vit.kernels_1tile.length > 0);
    // The loop's 512-token prompt is submitted in parts; its decode figures must not count them as steps.
    const loop = doc.sections.loop.in_flight_12_per_readback_4 as Doc;
    assert.ok(loop.prompt_passes > 1, `loop prompt passes ${loop.prompt_passes}`);
    // Where the loop's idle time is: the queue's first steps and the long gaps are parts of the total.
    const gaps = loop.gpu_idle_steps_over_half_ms as [number, number][];
    assert.ok(loop.gpu_idle_ms_first_in_flight_steps <= loop.gpu_idle_ms_total + 0.01);
    assert.ok(gaps.every(([step, ms]) => step >= 1 && step < loop.new_tokens && ms > 0.5));
    assert.ok(gaps.every(([, ms]) => ms <= loop.gpu_idle_ms_between_steps_max + 0.01));
    assert.ok(gaps.reduce((a, [, ms]) => a + ms, 0) <= loop.gpu_idle_ms_total + 0.1);
    // The step after each readback but the last ran as two passes, joined into one step: readbacks after
    // the prompt's at steps 4, 8, … of new_tokens − 1 steps.
    assert.equal(loop.split_steps, Math.floor((loop.new_tokens - 2) / 4) + 1);
    assert.ok(loop.gpu_idle_ms_inside_split_steps_median >= 0);
    for (const k of ["cpu_ms_map_block_median", "cpu_ms_submit_after_drain_median", "cpu_ms_submit_median"]) {
      assert.ok(isNum(loop[k]) && loop[k] > 0, `${k} = ${loop[k]}`);
    }
    assert.ok(
      isNum(doc.sections.loop.ttft_wall_ms_one_token) && doc.sections.loop.ttft_wall_ms_one_token > 0,
    );
  }
  // The logits check needs python3 with torch or numpy; where it ran, it must pass.
  if (doc.sections.logits.status === "ok" && !doc.sections.logits.skipped) {
    assert.ok(doc.logits_rel_err_vs_torch <= 1e-2, `logits rel err ${doc.logits_rel_err_vs_torch}`);
  }
  assert.match(stdout, /decode b1 ctx512 \(ms\/token\)/);
});

Deno.test("bench --timing wall falls back to wall clock and skips what needs timestamps (--kv-cache bf16)", async () => {
  const { doc } = await bench([
    "--timing",
    "wall",
    "--sections",
    "copy,decode,kernels",
    "--kv-cache",
    "bf16",
  ]);
  assert.equal(doc.timing_method, "wall-clock");
  // A bf16 KV cache: recorded, and the decode byte model counts 2 bytes a cached value.
  assert.equal(doc.kv_cache_dtype, "bf16");
  const bf16Bytes = decodeCost(benchShapes("tiny").language, 512, 1, 2).totalBytes;
  assert.equal(doc.sections.decode.b1_ctx512.bytes_per_step, bf16Bytes);
  assert.ok(bf16Bytes < decodeCost(benchShapes("tiny").language, 512, 1).totalBytes);
  assert.deepEqual(Object.keys(doc.sections), ["env", "copy", "decode", "kernels"]);
  // Which one-token form the decode figures are (llvmpipe keeps subnormal halves: the biased sums).
  assert.equal(doc.sections.env.half_subnormals, true);
  assert.ok(isNum(doc.decode_ms_b1_ctx512) && doc.decode_ms_b1_ctx512 > 0);
  assert.equal(doc.sections.decode.b1_ctx512.method, "wall-clock");
  assert.equal(doc.gpu_idle_ms_between_steps, null);
  assert.equal(doc.sections.kernels.status, "skipped");
  assert.equal(doc.prefill_ms_1800, null);
});

Deno.test("a failing section is recorded and the run goes on, on a fresh device after a GPU error", async () => {
  const { doc } = await bench(["--sections", "decode,batch"], { INTERNVL_BENCH_INJECT: "decode:gpu" });
  assert.equal(doc.sections.decode.status, "error");
  assert.match(doc.sections.decode.error, /injected failure in decode/);
  assert.equal(doc.decode_ms_b1_ctx512, null);
  assert.equal(doc.sections.batch.status, "ok");
  assert.ok(isNum(doc.batch8_tokens_per_s));
});

Deno.test("a tiny budget skips later sections but still writes every key", async () => {
  const { doc } = await bench(["--budget", "0.02", "--sections", "copy,decode,vit,prefill"]);
  const statuses = Object.values(doc.sections as Record<string, Doc>).map((s) => s.status);
  assert.ok(statuses.includes("skipped"), `statuses ${statuses}`);
  for (const k of headlineKeys) assert.ok(k in doc, `missing key ${k}`);
});

Deno.test("bench --tiling runs the decode products in the tilings given and says so", async () => {
  // The tiny model's wo (64 × 64) at one row: linear_matvec unless set (src/ops/matvec_i8.ts).
  const list = "matvec_i8:linear:1:64:64=R2,L16,U1";
  const { doc } = await bench(["--sections", "decode,kernels", "--tiling", list]);
  assert.equal(doc.tilings, list);
  assert.ok(isNum(doc.decode_ms_b1_ctx512));
  const ops = (doc.sections.kernels.kernels as Doc[]).map((k) => k.op);
  assert.ok(ops.includes("matvec_i8 lm.*.attention.wo"), `the step's kernels: ${ops}`);
});

Deno.test("bench rejects unknown sections and options", async () => {
  for (
    const args of [
      ["--sections", "decode,nope"],
      ["--frobnicate"],
      ["--kv-cache", "f16"],
      ["--first-part-dispatches", "-3"],
      ["--tiling", "matvec_i8:linear:1:64:64=R3,L8,U1"],
    ]
  ) {
    const res = await new Deno.Command(Deno.execPath(), {
      args: ["task", "bench", "--tiny", ...args],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(res.code, 2, `args ${args}`);
  }
});

const python = await probePython();

Deno.test({
  name: "bench --torch runs the PyTorch baseline and reports ratios (its code paths on the CPU here)",
  ignore: !python?.torch,
  async fn() {
    const { doc } = await bench(["--torch", "--sections", "decode,torch"], {
      INTERNVL_BENCH_TORCH_DEVICE: "cpu",
    });
    const torch = doc.sections.torch;
    assert.equal(torch.status, "ok", torch.error);
    assert.equal(torch.device, "cpu");
    assert.ok(isNum(doc.torch_decode_ms_eager));
    assert.ok(isNum(doc.ratios_vs_torch.decode_b1_ctx512_vs_eager));
    assert.equal(doc.torch_decode_ms_cudagraph, null); // no CUDA graphs on the CPU
  },
});

Deno.test("bench --tiny --int8-matmul llm-int8 runs the LLM.int8 paths and reports their outlier counts", async () => {
  // The logits check needs python3 with torch or numpy.
  const logits = python?.torch || python?.numpy ? ["logits"] : [];
  const sections = ["decode", "kernels", "prefill", "vit", ...logits];
  const { doc } = await bench(["--int8-matmul", "llm-int8", "--sections", sections.join(",")]);
  assert.equal(doc.int8_matmul, "llm-int8");
  for (const name of sections) {
    assert.equal(doc.sections[name].status, "ok", `${name}: ${doc.sections[name].error ?? ""}`);
  }
  if (logits.length) {
    // The logits check against an LLM.int8 reference, product by product on the engine's own inputs.
    const s = doc.sections.logits;
    assert.equal(s.int8_matmul, "llm-int8");
    assert.equal(s.reference.int8_matmul, "llm-int8");
    // 2 layers × 5 linears + the head, in the prompt pass and in the decode step.
    assert.equal(s.reference.llm_int8_products, 22);
    assert.equal(s.checked, "every product on the engine's inputs");
    for (const pass of ["prompt", "step"]) {
      assert.deepEqual(Object.keys(s.reference.products[pass]).sort(), ["head", "w1·w3", "w2", "wo", "wqkv"]);
    }
    assert.equal(doc.logits_rel_err_vs_torch, s.products_max_rel_err);
    assert.ok(s.pass && doc.logits_rel_err_vs_torch <= 1e-2, `logits rel err ${doc.logits_rel_err_vs_torch}`);
    // On identical inputs a product differs only where a rounding lands the other side of a half step.
    assert.ok(s.products_max_rel_err <= 1e-3, `products rel err ${s.products_max_rel_err}`);
    // The tiny model's logits (no rounding there lands near a half step) agree too.
    assert.ok(s.prefill.rel_err <= 1e-2 && s.decode.rel_err <= 1e-2);
    assert.ok(isNum(s.vs_weight_only_f32.decode.rel_err));
  }
  assert.ok(isNum(doc.decode_ms_b1_ctx512) && isNum(doc.prefill_ms_1800 ?? doc.sections.prefill.ms));
  // The counts come from the LLM.int8 scratches themselves: present (a number) only in these modes.
  const { prefill, vit } = doc.sections;
  assert.ok(isNum(prefill.llm_int8_outlier_columns_last_w2));
  assert.ok(isNum(vit.tiles_1.llm_int8_outlier_columns_last_fc2));
  // One count per layer, the last one the figure above.
  const w2: number[] = prefill.llm_int8_outlier_columns_w2_by_layer;
  const fc2: number[] = vit.tiles_1.llm_int8_outlier_columns_fc2_by_layer;
  assert.ok(w2.every(isNum) && fc2.every(isNum) && w2.length > 1 && fc2.length > 1);
  assert.equal(w2.at(-1), prefill.llm_int8_outlier_columns_last_w2);
  assert.equal(fc2.at(-1), vit.tiles_1.llm_int8_outlier_columns_last_fc2);
  const kernels: { op: string }[] = doc.sections.prefill.kernels;
  assert.ok(kernels.some((k) => k.op.startsWith("linear_dp4a")), "the prompt pass used the LLM.int8 GEMM");
  await assert.rejects(() => bench(["--int8-matmul", "int4", "--sections", "decode"]), /exited with/);
});
