// PyTorch in the same run: the bf16 baseline of the same shapes (bench/torch_baseline.py), and a logits
// check of our forward against a float32 reference over the same random int8 weights (a few layers of
// real width, dumped to a temporary directory — small enough to pass through the CPU).
import type { Tensor } from "../gpu/tensor.ts";
import type { LanguageWeights } from "../model/language.ts";
import { LmRunner } from "../model/lm_runner.ts";
import { snapshotTap } from "../model/vision.ts";
import { llmInt8Threshold } from "../ops/llm_int8.ts";
import type { Gpu } from "../gpu/device.ts";
import type { LinearWeights } from "../ops/linear.ts";
import type { BenchContext, Json } from "./bench_context.ts";
import { SyntheticFactory, syntheticLanguageWeights } from "./synthetic_weights.ts";
import { sig } from "./util.ts";

const scriptPath = new URL("../../bench/torch_baseline.py", import.meta.url).pathname;
const round = (x: number, digits?: number) => sig(x, digits === undefined ? 4 : Math.max(4, digits + 1));

/** Runs bench/torch_baseline.py; resolves with its JSON or throws with the tail of its stderr. */
export async function runPython(
  args: string[],
  timeoutMs: number,
): Promise<{ json: Record<string, Json>; ms: number }> {
  const t0 = performance.now();
  const out = await new Deno.Command("python3", {
    args: [scriptPath, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(Math.max(1000, timeoutMs)),
  }).output();
  const ms = performance.now() - t0;
  const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `python3 ${scriptPath} ${args.join(" ")} exited with ${out.code}${
        out.signal ? ` (${out.signal})` : ""
      }: ` +
        (stderr.trim() || stdout.trim()).slice(-1500),
    );
  }
  const start = stdout.indexOf("{");
  return { json: JSON.parse(stdout.slice(start)), ms };
}

/** What Python offers here: null when python3 is missing, else torch/CUDA/numpy availability. */
export async function probePython(): Promise<{ torch: boolean; cuda: boolean; numpy: boolean } | null> {
  const code =
    "import json,importlib.util as u\nr={'torch':bool(u.find_spec('torch')),'numpy':bool(u.find_spec('numpy')),'cuda':False}\n" +
    "if r['torch']:\n import torch; r['cuda']=torch.cuda.is_available()\nprint(json.dumps(r))";
  try {
    const out = await new Deno.Command("python3", { args: ["-c", code], stdout: "piped", stderr: "null" })
      .output();
    if (!out.success) return null;
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } catch {
    return null;
  }
}

/** The bf16 PyTorch baseline of the same shapes, and our figures as ratios to it. */
export async function torchSection(ctx: BenchContext, allowanceMs: number): Promise<Record<string, Json>> {
  const py = await probePython();
  // Test hook: INTERNVL_BENCH_TORCH_DEVICE=cpu runs the baseline's code paths on the CPU (meaningless figures).
  const device = Deno.env.get("INTERNVL_BENCH_TORCH_DEVICE") ?? "cuda";
  if (!py?.torch || (!py.cuda && device === "cuda")) {
    return {
      skipped: !py ? "python3 not found" : !py.torch ? "python3 has no torch" : "torch sees no CUDA device",
    };
  }
  // Our model's memory goes back to the card first: the bf16 LLM alone is 40 GB.
  await ctx.dropModel();
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const budgetS = Math.max(10, allowanceMs / 1000 - 15);
    const args = ["--out", file, "--budget-s", String(Math.floor(budgetS)), "--device", device];
    if (ctx.shapes.scale === "tiny") args.push("--tiny");
    const { json: t, ms } = await runPython(args, allowanceMs);
    const R = ctx.results;
    const num = (k: string) => (typeof t[k] === "number" ? t[k] as number : null);
    R.torch_decode_ms_eager = num("decode_ms_eager_b1_ctx512");
    R.torch_decode_ms_cudagraph = num("decode_ms_cudagraph_b1_ctx512");
    R.torch_copy_GBps = num("copy_GBps");
    const ratio = (ours: Json | undefined, theirs: number | null, inverse = false) =>
      typeof ours === "number" && theirs ? round(inverse ? theirs / ours : ours / theirs) : null;
    // > 1 means we are slower (times) — for tokens/s the ratio is inverted to keep that reading.
    const ratios: Record<string, Json> = {
      decode_b1_ctx512_vs_cudagraph: ratio(R.decode_ms_b1_ctx512, num("decode_ms_cudagraph_b1_ctx512")),
      decode_b1_ctx512_vs_eager: ratio(R.decode_ms_b1_ctx512, num("decode_ms_eager_b1_ctx512")),
      decode_b1_ctx4096_vs_cudagraph: ratio(R.decode_ms_b1_ctx4096, num("decode_ms_cudagraph_b1_ctx4096")),
      batch8_vs_cudagraph: ratio(R.batch8_tokens_per_s, num("tokens_per_s_cudagraph_b8_ctx512"), true),
      prefill_1800_vs_torch: ratio(R.prefill_ms_1800, num("prefill_1800tok_ms")),
      vit_projector_7tiles_vs_torch: ratio(R.vit_projector_ms_7tiles, num("vit_projector_7tiles_ms")),
      copy_GBps_vs_torch: ratio(R.copy_GBps, num("copy_GBps"), true),
    };
    R.ratios_vs_torch = ratios;
    return { wall_ms: round(ms, 0), device, result: t, ratios_ours_over_torch: ratios };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

type DumpFile = { file: string; dtype: "i8" | "f32" | "bf16"; shape: number[] };

/**
 * Builds a `compareLayers`-layer language model of real width from GPU-random int8 weights, runs a prompt
 * and one decode step in the bench's `--int8-matmul` mode, dumps those weights, and compares the logits with
 * bench/torch_baseline.py --compare in the same numerics (in an LLM.int8 mode, bitsandbytes' LLM.int8 where
 * the engine uses it, so that no speed of those modes comes from wrong numbers). The reference also runs
 * every product of both passes on the engine's own inputs (productTaps). The check (`pass`,
 * logits_rel_err_vs_torch) is the logits in weight-only and the worst product in an LLM.int8 mode, whose
 * logits drift from any other correct LLM.int8 forward's (PERF.md); both are reported either way. In an
 * LLM.int8 mode it also reports how far the logits are from the float32 weight-only forward.
 */
export async function logitsSection(ctx: BenchContext, allowanceMs: number): Promise<Record<string, Json>> {
  const py = await probePython();
  if (!py || !(py.torch || py.numpy)) return { skipped: "python3 with torch or numpy not found" };
  await ctx.dropModel(); // the full model is not needed here and a second copy of the embeddings would be
  const { gpu, shapes } = ctx;
  const dims = { ...shapes.language, layers: shapes.compareLayers };
  const r = gpu.recorder("bench.compare.weights");
  const f = new SyntheticFactory(gpu, r, ctx.opts.seed + 1);
  const w = syntheticLanguageWeights(f, dims);
  r.submit();
  const T = shapes.compareTokens;
  const prompt = Array.from({ length: T }, (_, t) => (t * 7919 + 101) % dims.vocab);
  const nextId = (T * 7919 + 101) % dims.vocab;
  const mode = ctx.opts.int8Matmul;
  const runner = new LmRunner(gpu, w, dims, 1, T + 2, { mode, threshold: llmInt8Threshold });
  const dir = await Deno.makeTempDir({ prefix: "internvl_bench_logits_" });
  try {
    const taps0 = productTaps(gpu), taps1 = productTaps(gpu);
    const r0 = gpu.recorder("bench.compare.prefill");
    const free = runner.recordPrefill(r0, [prompt], [prompt.map(() => 1)], -1, null, taps0.tap);
    r0.submit();
    const ours0 = await gpu.readF32(runner.logits);
    free();
    const next = gpu.uploadTensor("bench.compare.next", "i32", [1], Int32Array.of(nextId));
    const r1 = gpu.recorder("bench.compare.decode");
    runner.recordDecode(r1, next, taps1.tap);
    r1.submit();
    const ours1 = await gpu.readF32(runner.logits);
    next.buffer.destroy();
    await Deno.writeFile(`${dir}/ours_logits0.f32`, new Uint8Array(ours0.buffer));
    await Deno.writeFile(`${dir}/ours_logits1.f32`, new Uint8Array(ours1.buffer));
    const taps = {
      "0": await saveTaps(gpu, taps0.taken, dir, "tap0"),
      "1": await saveTaps(gpu, taps1.taken, dir, "tap1"),
    };

    const t0 = performance.now();
    const manifest = await dumpWeights(ctx, w, dims.layers, [...prompt, nextId], dir);
    const dumpMs = performance.now() - t0;
    await Deno.writeTextFile(
      `${dir}/manifest.json`,
      JSON.stringify({
        dims,
        prompt_ids: prompt,
        next_id: nextId,
        int8_matmul: mode,
        threshold: llmInt8Threshold,
        taps,
        ...manifest,
      }),
    );
    const { json: info, ms } = await runPython(
      ["--compare", dir, "--out", `${dir}/compare.json`],
      allowanceMs - dumpMs,
    );
    const logits = async (name: string) => new Float32Array((await Deno.readFile(`${dir}/${name}`)).buffer);
    const e0 = relErr(ours0, await logits("torch_logits0.f32"));
    const e1 = relErr(ours1, await logits("torch_logits1.f32"));
    // Weight-only: the logits themselves. LLM.int8: every product on the engine's own inputs (the head's
    // gives the logits), since one rounding apart becomes a quantization step apart in the next layer's
    // products (productTaps) and the logits of two correct LLM.int8 forwards drift apart layer by layer.
    const endToEnd = Math.max(e0.rel, e1.rel);
    const products = (info as { products_max_rel_err?: number }).products_max_rel_err;
    if (typeof products !== "number") throw new Error("the reference reported no per-product errors");
    const checked = mode === "weight-only" ? endToEnd : products;
    ctx.results.logits_rel_err_vs_torch = round(checked, 8);
    const figures = (e: ReturnType<typeof relErr>) => ({
      rel_err: round(e.rel, 8),
      max_abs: round(e.maxAbs, 6),
      same_argmax: e.sameArgmax,
    });
    let vsF32: Record<string, Json> | null = null;
    if (mode !== "weight-only") {
      vsF32 = {
        prefill: figures(relErr(ours0, await logits("torch_f32_logits0.f32"))),
        decode: figures(relErr(ours1, await logits("torch_f32_logits1.f32"))),
      };
    }
    return {
      int8_matmul: mode,
      reference: info,
      layers: dims.layers,
      width: dims.hidden,
      vocab: dims.vocab,
      prompt_tokens: T,
      dumped_bytes: manifest.bytes,
      dump_ms: round(dumpMs, 0),
      python_ms: round(ms, 0),
      checked: mode === "weight-only" ? "logits" : "every product on the engine's inputs",
      // The logits against the reference's own forward in the same numerics.
      prefill: figures(e0),
      decode: figures(e1),
      products_max_rel_err: round(products, 8),
      pass: checked <= 1e-2,
      // LLM.int8 modes: ours against the float32 weight-only forward (information, not the check).
      vs_weight_only_f32: vsF32,
    };
  } finally {
    runner.destroy();
    f.destroyAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The engine's tensors at each int8 product's boundary in one pass (language.ts's taps: the layer input,
 * qkv, the attention output, the hidden state after wo, silu(gate)·up, the layer output), so that the
 * reference can run every product on the engine's own inputs: LLM.int8 turns a difference of one rounding
 * into one of the quantization step (a row's scale, an outlier column), so the logits after a few layers
 * differ by more than any one product does.
 */
function productTaps(gpu: Gpu) {
  const names = ["lm.embeddings", "lm.qkv", "lm.attn", "lm.attn_out", "lm.act", "lm.layer"];
  return snapshotTap(gpu, (name) => names.includes(name));
}

/** Writes every copy as raw f32 into dir and destroys it; returns `name:layer` → file and shape. */
async function saveTaps(
  gpu: Gpu,
  taken: Map<string, Tensor>,
  dir: string,
  prefix: string,
): Promise<Record<string, DumpFile>> {
  const files: Record<string, DumpFile> = {};
  for (const [key, t] of taken) {
    const file = `${prefix}.${key.replace(":", ".")}.f32`;
    await Deno.writeFile(`${dir}/${file}`, new Uint8Array(await gpu.readBytes(t)));
    files[key] = { file, dtype: "f32", shape: [...t.shape] };
    t.buffer.destroy();
  }
  return files;
}

/** ‖a − b‖ / ‖b‖, max |a − b|, and whether the argmax agrees. */
export function relErr(
  a: Float32Array,
  b: Float32Array,
): { rel: number; maxAbs: number; sameArgmax: boolean } {
  if (a.length !== b.length) throw new Error(`logits lengths differ: ${a.length} vs ${b.length}`);
  let num = 0, den = 0, maxAbs = 0, ia = 0, ib = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    if (a[i] > a[ia]) ia = i;
    if (b[i] > b[ib]) ib = i;
  }
  return { rel: Math.sqrt(num / Math.max(den, 1e-30)), maxAbs, sameArgmax: ia === ib };
}

/** Writes each weight's raw bytes (int8 rows are exactly [N, K] when K % 4 == 0) plus the used embedding rows. */
async function dumpWeights(
  ctx: BenchContext,
  w: LanguageWeights,
  layers: number,
  ids: number[],
  dir: string,
) {
  const { gpu } = ctx;
  const files: Record<string, DumpFile> = {};
  let bytes = 0;
  const put = async (name: string, t: Tensor, dtype: DumpFile["dtype"]) => {
    const data = new Uint8Array(await gpu.readBytes(t));
    await Deno.writeFile(`${dir}/${name}.bin`, data);
    files[name] = { file: `${name}.bin`, dtype, shape: [...t.shape] };
    bytes += data.byteLength;
  };
  const putLinear = async (name: string, l: LinearWeights) => {
    if (l.kind !== "int8") throw new Error(`${name}: the comparison expects int8 Linears`);
    if (l.weight.shape[1] % 4 !== 0) throw new Error(`${name}: K % 4 != 0 would need unpadding`);
    await put(`${name}.weight`, l.weight, "i8");
    await put(`${name}.scale`, l.scale, "f32");
  };
  for (let l = 0; l < layers; l++) {
    const lw = w.layers[l];
    await put(`L${l}.attention_norm`, lw.attentionNorm, "f32");
    await putLinear(`L${l}.wqkv`, lw.wqkv);
    await putLinear(`L${l}.wo`, lw.wo);
    await put(`L${l}.ffn_norm`, lw.ffnNorm, "f32");
    await putLinear(`L${l}.w1`, lw.w1);
    await putLinear(`L${l}.w3`, lw.w3);
    await putLinear(`L${l}.w2`, lw.w2);
  }
  await put("norm", w.norm, "f32");
  await putLinear("output", w.output);
  // Only the embedding rows the prompt uses (the whole table is 1.1 GB): bf16 [n, D].
  const unique = [...new Set(ids)];
  const D = w.embed.shape[1], rowBytes = D * 2;
  const rows = new Uint8Array(unique.length * rowBytes);
  for (let i = 0; i < unique.length; i++) {
    rows.set(new Uint8Array(await gpu.readBytes(w.embed, rowBytes, unique[i] * rowBytes)), i * rowBytes);
  }
  await Deno.writeFile(`${dir}/embed_rows.bin`, rows);
  files.embed_rows = { file: "embed_rows.bin", dtype: "bf16", shape: [unique.length, D] };
  bytes += rows.byteLength;
  return { files, row_of_id: Object.fromEntries(unique.map((id, i) => [String(id), i])), bytes };
}
