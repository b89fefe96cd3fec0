// `deno task bench [--tiny] [--torch] [--out FILE] [--sections a,b] [--budget MIN] [--timing wall]
//                  [--model-dir DIR] [--seed N] [--int8-matmul MODE] [--batches 4,8] [--kv-cache DTYPE]
//                  [--row-head-prefetch LIST] [--first-part-dispatches N] [--tiling LIST]`
// Benchmarks InternVL-Chat-V1.5-Int8 on this WebGPU adapter with the real shapes (or tiny ones with
// --tiny, for CI on llvmpipe) from random int8 weights generated on the GPU, and prints a table plus,
// with --out, a JSON document (keys in src/bench/report.ts, meanings in docs/PERF.md).
// Every section is isolated: an error is recorded in the JSON and the run goes on.
import { parseArgs } from "node:util";
import { BenchContext, Budget, type Json } from "../src/bench/bench_context.ts";
import { measureCopyBandwidth } from "../src/bench/copy_bandwidth.ts";
import { exitWithoutTeardown, openLibC } from "../src/gpu/exit_without_teardown.ts";
import {
  batchSection,
  decodeSection,
  kernelsSection,
  loopSection,
  prefillSection,
} from "../src/bench/llm_sections.ts";
import { ttftSection, vitSection } from "../src/bench/vision_sections.ts";
import { joinSection } from "../src/bench/join_section.ts";
import { logitsSection, torchSection } from "../src/bench/torch_sections.ts";
import { renderTable, resultsDocument } from "../src/bench/report.ts";
import { benchShapes } from "../src/bench/shapes.ts";
import { decodeCost } from "../src/bench/model_cost.ts";
import { sig } from "../src/bench/util.ts";
import { type Int8Matmul, int8Matmuls } from "../src/model/int8_matmul.ts";
import { type KvCacheDtype, kvCacheDtypes } from "../src/model/kv_cache.ts";
import {
  describeRowHeadPrefetch,
  parseRowHeadPrefetch,
  rowHeadPrefetch,
} from "../src/ops/prefetch_row_heads.ts";
import {
  describeTilingOverrides,
  parseTilingOverrides,
  tilingOverrides,
} from "../src/ops/tiling_overrides.ts";

const usage = `usage: deno task bench [options]
  --tiny, --scale tiny|full  tiny shapes, same code path (CI on a CPU adapter); default full (real V1.5 shapes)
  --out FILE                 write the results JSON to FILE
  --torch                    also run bench/torch_baseline.py (needs python3 + torch + CUDA)
  --sections a,b,…           run only these (in the fixed order): SECTIONS
  --budget MIN               total wall-clock budget in minutes (default 8); later sections are skipped
  --timing wall              time by wall clock even when the adapter has timestamp-query
  --model-dir DIR            load real weights from DIR (or MODEL_DIR) instead of random ones
  --seed N                   seed of the random weights (default 1)
  --int8-matmul MODE         weight-only (default), llm-int8, llm-int8-prefill or llm-int8-batched (INT8_MATMUL, README)
  --batches B,B,…            the batch section's batch sizes, 2..64 (default 4,8; batchB_tokens_per_s each)
                             (kernels: a profile of 8 rows and of the first count past 8)
  --kv-cache DTYPE           f32 (default) or bf16: how the KV caches store keys and values (KV_CACHE_DTYPE)
  --row-head-prefetch LIST   weight-only steps of 1–2 rows read the first bytes of each weight row ahead:
                             [PRODUCT=]BYTES:WORKGROUPS or [PRODUCT=]off applied in order to the defaults
                             (wqkv=256:66,wo=512:66,gateUp=192:66,w2=192:132,head=off); no PRODUCT:
                             all (src/ops/prefetch_row_heads.ts, docs/PERF.md v52, v53)
  --first-part-dispatches N  the loop section's generate(): dispatches of the step after each readback's
                             drain submitted ahead of the rest (default 48, the server's; tiny: 4; 0: one
                             submit a step; docs/PERF.md v73)
  --tiling LIST              decode products' kernel tilings by hand, for sweeps in the model (';'-separated):
                             matvec_i8:MODE:T:N:K=R4,L64,U2[,VEC][,P264] (weight-only; MODE linear, norm or
                             gateUp, N the rows of one matrix), matvec_i8:linear:T:N:K=linear_matvec, or
                             matvec_dp4a:[gateUp:]T:N:K=R1,L16,U4[,PH4][,S2] (LLM.int8; src/ops/tiling_overrides.ts)`;

type SectionFn = (ctx: BenchContext, allowanceMs: number) => Promise<Record<string, Json>>;
interface Section {
  name: string;
  /** Time kept free for this section while earlier ones run (full / tiny scale). */
  reserveMs: [number, number];
  run: SectionFn;
}

const sections: Section[] = [
  { name: "copy", reserveMs: [5_000, 2_000], run: copySection },
  { name: "weights", reserveMs: [20_000, 3_000], run: weightsSection },
  { name: "decode", reserveMs: [20_000, 5_000], run: decodeSection },
  { name: "batch", reserveMs: [20_000, 5_000], run: batchSection },
  { name: "kernels", reserveMs: [10_000, 3_000], run: kernelsSection },
  { name: "prefill", reserveMs: [30_000, 3_000], run: prefillSection },
  { name: "loop", reserveMs: [20_000, 3_000], run: loopSection },
  { name: "vit", reserveMs: [30_000, 3_000], run: vitSection },
  { name: "ttft", reserveMs: [30_000, 3_000], run: ttftSection },
  { name: "join", reserveMs: [60_000, 5_000], run: joinSection },
  { name: "logits", reserveMs: [60_000, 5_000], run: logitsSection },
  { name: "torch", reserveMs: [150_000, 20_000], run: torchSection },
];

async function copySection(ctx: BenchContext): Promise<Record<string, Json>> {
  const r = await measureCopyBandwidth(ctx.gpu, ctx.timer, ctx.shapes.copyBytes);
  ctx.copyGBps = r.GBps;
  ctx.results.copy_GBps = sig(r.GBps);
  const ratio = r.gpuSpanOverWall;
  const warning = ratio !== undefined && (ratio > 1.05 || (ratio < 0.2 && ctx.shapes.scale === "full"))
    ? `GPU timestamps span ${
      ratio.toFixed(3)
    }× the wall time: check the timestamp unit before trusting figures`
    : null;
  if (warning) ctx.opts.log(`WARNING: ${warning}`);
  return { ...r, warning };
}

async function weightsSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const m = await ctx.model();
  ctx.results[m.source === "synthetic" ? "weight_fill_ms" : "weight_load_ms"] = sig(m.buildMs);
  const d = decodeCost(ctx.shapes.language, ctx.shapes.decodeContexts[0]);
  return {
    source: m.source,
    build_ms: m.buildMs,
    fill_gpu_ms: m.fillGpuMs,
    bytes: m.bytes,
    tensors: m.tensors,
    max_tensor_bytes: m.maxTensorBytes,
    max_binding_bytes: ctx.gpu.maxBindingBytes,
    llm_decode_weight_bytes: d.weightBytes,
  };
}

async function environment(ctx: BenchContext): Promise<Record<string, Json>> {
  const { gpu } = ctx;
  let nvidia: string | null = null;
  try {
    const out = await new Deno.Command("nvidia-smi", {
      args: [
        "--query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version",
        "--format=csv,noheader",
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (out.success) nvidia = new TextDecoder().decode(out.stdout).trim();
  } catch { /* not an NVIDIA host */ }
  let commit: string | null = null;
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (out.success) commit = new TextDecoder().decode(out.stdout).trim();
  } catch { /* no git */ }
  const l = gpu.limits;
  return {
    adapter: gpu.adapterDescription,
    fallback_adapter: gpu.isFallbackAdapter,
    nvidia_smi: nvidia,
    features: { "shader-f16": gpu.hasF16, "timestamp-query": gpu.hasTimestamps },
    // Whether the one-token products take the biased sums (src/gpu/half_subnormals.ts): where the device
    // flushes subnormal halves they take the exact widening, and the decode figures are those of that form.
    half_subnormals: gpu.halfSubnormals,
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
    deno: Deno.version.deno,
    commit,
  };
}

/**
 * Test hook: INTERNVL_BENCH_INJECT="section:throw" makes that section throw; "section:gpu" also poisons the
 * device the way a real validation error would (tests/bench checks that later sections still run).
 */
function injectFailure(ctx: BenchContext, section: string): void {
  const spec = Deno.env.get("INTERNVL_BENCH_INJECT");
  if (!spec) return;
  const [name, kind] = spec.split(":");
  if (name !== section) return;
  if (kind === "gpu") {
    ctx.gpu.watch(Promise.resolve({ message: "injected validation error" } as GPUError), "injecting");
  }
  throw new Error(`injected failure in ${section}`);
}

/** --batches: distinct batch sizes, 2..64 (MAX_BATCH's range), e.g. "3,5,8". */
function parseBatches(text: string): number[] {
  const sizes = text.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (sizes.length === 0 || sizes.some((b) => !Number.isInteger(b) || b < 2 || b > 64)) {
    throw new Error(`--batches ${text}: give batch sizes 2..64 separated by commas, e.g. --batches 4,8`);
  }
  return [...new Set(sizes)];
}

async function main(): Promise<number> {
  // node:util rather than jsr:@std/cli: the GPU host has no network and deno.json lists no std.
  const { values: args } = parseArgs({
    args: Deno.args,
    options: Object.fromEntries([
      ...["tiny", "torch", "help"].map((k) => [k, { type: "boolean" as const }]),
      ...[
        "out",
        "sections",
        "budget",
        "timing",
        "model-dir",
        "scale",
        "seed",
        "int8-matmul",
        "batches",
        "kv-cache",
        "row-head-prefetch",
        "first-part-dispatches",
        "tiling",
      ]
        .map((k) => [k, { type: "string" as const }]),
    ]),
  }) as { values: Record<string, string | boolean | undefined> };
  if (args.help) {
    console.log(usage.replace("SECTIONS", sections.map((s) => s.name).join(",")));
    return 0;
  }
  const str = (k: string) => (typeof args[k] === "string" ? args[k] as string : undefined);
  const scale = args.tiny ? "tiny" : (str("scale") ?? "full");
  if (scale !== "tiny" && scale !== "full") throw new Error(`--scale ${scale}: use tiny or full`);
  const budgetMin = str("budget") === undefined ? 8 : Number(str("budget"));
  if (!(budgetMin > 0)) throw new Error(`--budget ${str("budget")}: give minutes, e.g. --budget 8`);
  const known = sections.map((s) => s.name);
  const wanted = str("sections")
    ? str("sections")!.split(",").map((s) => s.trim()).filter(Boolean)
    : known.filter((n) => n !== "torch" || args.torch);
  for (const w of wanted) {
    if (!known.includes(w)) throw new Error(`--sections: unknown "${w}" (known: ${known})`);
  }
  if (args.torch && !wanted.includes("torch")) wanted.push("torch");
  const modelDir = str("model-dir") ?? Deno.env.get("MODEL_DIR") ?? null;
  const int8Matmul = (str("int8-matmul") ?? "weight-only") as Int8Matmul;
  if (!int8Matmuls.includes(int8Matmul)) {
    throw new Error(`--int8-matmul ${int8Matmul}: use ${int8Matmuls.join(" or ")}`);
  }
  const kvCacheDtype = (str("kv-cache") ?? "f32") as KvCacheDtype;
  if (!kvCacheDtypes.includes(kvCacheDtype)) {
    throw new Error(`--kv-cache ${kvCacheDtype}: use ${kvCacheDtypes.join(" or ")}`);
  }
  // Read when each decode scratch is built, so it is set before the model is.
  const rowHeads = str("row-head-prefetch");
  if (rowHeads !== undefined) Object.assign(rowHeadPrefetch, parseRowHeadPrefetch(rowHeads));
  const tiling = str("tiling");
  if (tiling !== undefined) Object.assign(tilingOverrides, parseTilingOverrides(tiling));
  const batches = str("batches");
  const firstPart = str("first-part-dispatches");
  if (firstPart !== undefined && !(Number.isInteger(Number(firstPart)) && Number(firstPart) >= 0)) {
    throw new Error(`--first-part-dispatches ${firstPart}: give a whole number of dispatches, 0 or more`);
  }
  const shapes = {
    ...benchShapes(scale),
    ...(batches === undefined ? {} : { decodeBatches: parseBatches(batches) }),
    ...(firstPart === undefined ? {} : { loopFirstPartDispatches: Number(firstPart) }),
  };
  const budget = new Budget(budgetMin * 60_000);
  const log = (s: string) => console.error(`[bench ${(budget.elapsedMs / 1000).toFixed(1)}s] ${s}`);
  const ctx = new BenchContext(shapes, budget, {
    forceWallClock: str("timing") === "wall",
    modelDir,
    seed: Number(str("seed") ?? 1),
    int8Matmul,
    kvCacheDtype,
    log,
  });
  const started = new Date();
  await ctx.init();
  ctx.sections.env = { status: "ok", ...(await environment(ctx)) };
  ctx.results.card = (ctx.sections.env.nvidia_smi as string | null)?.split(",")[0] ??
    ctx.gpu.adapterDescription;
  ctx.results.date = started.toISOString();
  ctx.results.scale = scale;
  ctx.results.timing_method = ctx.timer.method;
  ctx.results.int8_matmul = int8Matmul;
  ctx.results.kv_cache_dtype = kvCacheDtype;
  ctx.results.row_head_prefetch = describeRowHeadPrefetch(rowHeadPrefetch);
  ctx.results.tilings = describeTilingOverrides(tilingOverrides);
  log(`${ctx.results.card}; timing: ${ctx.timer.method}; scale ${scale}; sections ${wanted.join(",")}`);

  const selected = sections.filter((s) => wanted.includes(s.name));
  const reserve = (s: Section) => s.reserveMs[scale === "tiny" ? 1 : 0];
  for (let i = 0; i < selected.length; i++) {
    const s = selected[i];
    const later = selected.slice(i + 1).reduce((n, x) => n + reserve(x), 0);
    const allowance = budget.remainingMs - later;
    if (allowance < Math.min(reserve(s), 5_000)) {
      ctx.sections[s.name] = {
        status: "skipped",
        reason: `budget: ${Math.round(allowance / 1000)} s left for it`,
      };
      log(`${s.name}: skipped (budget)`);
      continue;
    }
    ctx.deadline = performance.now() + allowance;
    const t0 = performance.now();
    log(`${s.name}: start (${Math.round(allowance / 1000)} s allowed)`);
    try {
      injectFailure(ctx, s.name);
      const details = await s.run(ctx, allowance);
      const status = "skipped" in details ? "skipped" : "ok";
      ctx.sections[s.name] = { status, wall_ms: Math.round(performance.now() - t0), ...details };
      if (status === "skipped") ctx.sections[s.name].reason = details.skipped;
      log(`${s.name}: ${status} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      const err = e as Error;
      const message = `${err.message}${
        err.cause ? ` (cause: ${(err.cause as Error).message ?? err.cause})` : ""
      }`;
      ctx.sections[s.name] = {
        status: "error",
        wall_ms: Math.round(performance.now() - t0),
        error: message,
        stack: err.stack?.split("\n").slice(1, 6).join("\n") ?? null,
      };
      log(`${s.name}: ERROR ${message}`);
      // A GPU error poisons the device (Gpu keeps its first error): start a fresh one for what follows.
      try {
        await ctx.gpu.check(`after section ${s.name}`);
      } catch {
        log("the GPU reported an error; recreating the device (the model is rebuilt on next use)");
        await ctx.resetDevice().catch((e2) => log(`device reset failed: ${(e2 as Error).message}`));
      }
    } finally {
      ctx.deadline = Infinity;
      ctx.timer.abandon();
    }
  }

  const doc = resultsDocument(ctx, {
    command: `deno task bench ${Deno.args.join(" ")}`.trim(),
    budget_min: budgetMin,
    wall_s: Number((budget.elapsedMs / 1000).toFixed(1)),
    model_source: modelDir ? `checkpoint ${modelDir}` : `synthetic (GPU random int8, seed ${ctx.opts.seed})`,
  });
  console.log(renderTable(doc));
  const out = str("out");
  if (out) {
    await Deno.writeTextFile(out, JSON.stringify(doc, null, 1) + "\n");
    log(`wrote ${out}`);
  }
  await ctx.dropModel().catch(() => {});
  ctx.timer.destroy();
  ctx.gpu.destroy();
  return 0;
}

if (import.meta.main) {
  const libc = openLibC();
  let code = 2;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
  }
  exitWithoutTeardown(libc, code);
  Deno.exit(code);
}
