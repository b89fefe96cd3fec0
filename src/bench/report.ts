// The benchmark's outputs: the JSON document (headline keys first, then per-section details) and the table
// printed to the terminal.
import type { BenchContext, Json } from "./bench_context.ts";
import { median } from "./gpu_timer.ts";

/** Headline keys every results file has (null when not measured; see docs/PERF.md for meanings). */
export const headlineKeys = [
  "card",
  "date",
  "scale",
  "timing_method",
  "copy_GBps",
  "weight_fill_ms",
  "weight_load_ms",
  "decode_ms_b1_ctx512",
  "decode_ms_b1_ctx4096",
  "dispatches_per_decode_step",
  "submits_per_decode_step",
  "gpu_idle_ms_between_steps",
  "decode_cpu_record_ms",
  "gemv_GBps",
  "gemv_bw_fraction",
  "batch4_tokens_per_s",
  "batch8_tokens_per_s",
  "loop_tokens_per_s",
  "loop_gpu_idle_ms_per_step",
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
  "logits_rel_err_vs_torch",
  "torch_copy_GBps",
  "torch_decode_ms_eager",
  "torch_decode_ms_cudagraph",
  "ratios_vs_torch",
] as const;

export function resultsDocument(ctx: BenchContext, meta: Record<string, Json>): Record<string, Json> {
  const doc: Record<string, Json> = {};
  for (const k of headlineKeys) doc[k] = ctx.results[k] ?? null;
  for (const [k, v] of Object.entries(ctx.results)) if (!(k in doc)) doc[k] = v;
  Object.assign(doc, meta);
  doc.sections = ctx.sections;
  return doc;
}

const fmt = (v: Json | undefined, digits = 2): string =>
  v === null || v === undefined ? "—" : typeof v === "number" ? v.toFixed(digits) : String(v);

/** A fixed-width table: our figure, the PyTorch figure of the same shape when there is one, and notes. */
export function renderTable(doc: Record<string, Json>): string {
  // deno-lint-ignore no-explicit-any
  const torch = ((doc.sections as any)?.torch?.result ?? {}) as Record<string, Json>;
  // deno-lint-ignore no-explicit-any
  const repeats: number[] = (doc.sections as any)?.ttft?.ttft_warm_followup_repeats_ms ?? [];
  const rows: [string, Json | undefined, Json | undefined, string][] = [
    ["copy bandwidth (GB/s)", doc.copy_GBps, torch.copy_GBps, "WGSL copy kernel vs torch copy_"],
    [
      "decode b1 ctx512 (ms/token)",
      doc.decode_ms_b1_ctx512,
      torch.decode_ms_cudagraph_b1_ctx512,
      "torch: bf16 CUDA graph",
    ],
    ["decode b1 ctx4096 (ms/token)", doc.decode_ms_b1_ctx4096, torch.decode_ms_cudagraph_b1_ctx4096, ""],
    ["batch 4 (tokens/s)", doc.batch4_tokens_per_s, torch.tokens_per_s_cudagraph_b4_ctx512, "ctx 512"],
    ["batch 8 (tokens/s)", doc.batch8_tokens_per_s, torch.tokens_per_s_cudagraph_b8_ctx512, "ctx 512"],
    ["generate() loop (tokens/s)", doc.loop_tokens_per_s, undefined, "wall clock, real engine loop"],
    ["GPU idle between steps (ms)", doc.gpu_idle_ms_between_steps, undefined, "back-to-back steps"],
    ["  … in generate() loop (ms)", doc.loop_gpu_idle_ms_per_step, undefined, ""],
    [
      "dispatches / submits per step",
      `${fmt(doc.dispatches_per_decode_step, 0)} / ${fmt(doc.submits_per_decode_step, 0)}`,
      undefined,
      "",
    ],
    [
      "int8 GEMV GB/s (fraction of copy)",
      doc.gemv_GBps,
      undefined,
      `fraction ${fmt(doc.gemv_bw_fraction, 3)}`,
    ],
    ["ViT+projector 1 tile (ms)", doc.vit_projector_ms_1tiles, torch.vit_projector_1tiles_ms, ""],
    ["ViT+projector 7 tiles (ms)", doc.vit_projector_ms_7tiles, torch.vit_projector_7tiles_ms, ""],
    ["ViT+projector 13 tiles (ms)", doc.vit_projector_ms_13tiles, torch.vit_projector_13tiles_ms, ""],
    ["prefill 1800 tokens (ms)", doc.prefill_ms_1800, torch.prefill_1800tok_ms, ""],
    ["TTFT 7 tiles cold (ms)", doc.ttft_cold_ms_7tiles, undefined, "wall clock, pixels → first id"],
    [
      "decoding + tiling on the CPU (ms)",
      doc.ttft_image_preprocess_ms,
      undefined,
      "4:3 JPEG (12 MP; 640×480 tiny), IMAGE_RESIZE=cpu",
    ],
    [
      "TTFT from JPEG bytes (ms)",
      doc.ttft_cold_from_jpeg_ms_7tiles,
      undefined,
      "wall clock, decode + GPU tiling (default)",
    ],
    [
      "TTFT follow-up round (ms)",
      doc.ttft_warm_followup_ms,
      undefined,
      "wall clock, kept KV cache, 31 new tokens",
    ],
    [
      "  … the same round again (ms)",
      repeats.length ? median(repeats) : undefined,
      undefined,
      `median of ${repeats.length}${
        repeats.length ? `, ${Math.min(...repeats)}–${Math.max(...repeats)}` : ""
      }`,
    ],
    [
      "TTFT new conversation, kept image (ms)",
      doc.ttft_kept_image_ms_7tiles,
      undefined,
      "wall clock, kept embeddings, whole prompt",
    ],
    [
      "TTFT new question, image block kept (ms)",
      doc.ttft_shared_image_block_ms,
      undefined,
      "wall clock, a copy of another conversation's",
    ],
    [
      "TTFT text, 1800 ids: cold / branch (ms)",
      `${fmt(doc.ttft_text_cold_ms_1800, 1)} / ${fmt(doc.ttft_shared_text_prefix_ms, 1)}`,
      undefined,
      "branch: a copy of the kept prefix + 30 ids",
    ],
    [
      "weights: fill / load (ms)",
      `${fmt(doc.weight_fill_ms, 0)} / ${fmt(doc.weight_load_ms, 0)}`,
      undefined,
      "",
    ],
    [
      doc.int8_matmul && doc.int8_matmul !== "weight-only"
        ? "LLM.int8 products rel. error vs reference (worst)"
        : "logits rel. error vs reference",
      doc.logits_rel_err_vs_torch,
      undefined,
      "≤ 1e-2 required",
    ],
  ];
  // One row a JOIN_CHUNK_TOKENS setting the join section ran.
  for (const key of Object.keys(doc)) {
    const chunk = key.match(/^join_rows_longest_gap_ms_chunk_(\d+)$/)?.[1];
    if (chunk === undefined) continue;
    rows.push([
      `join, chunk ${chunk}: stall / 1st (ms)`,
      `${fmt(doc[key], 0)} / ${fmt(doc[`join_first_token_ms_chunk_${chunk}`], 0)}`,
      undefined,
      chunk === "0" ? "rows' longest gap / newcomer's first token; whole pass" : "pieces beside the rows",
    ]);
  }
  const lines = [
    `InternVL Edge bench — ${doc.card} — ${doc.date} — scale ${doc.scale} — timing ${doc.timing_method}`,
    "",
    `${"metric".padEnd(36)} ${"ours".padStart(12)} ${"torch".padStart(12)} ${
      "ours/torch".padStart(11)
    }  note`,
  ];
  for (const [name, ours, theirs, note] of rows) {
    const ratio = typeof ours === "number" && typeof theirs === "number" && theirs !== 0
      ? ours / theirs
      : null;
    const digits = name.includes("rel. error") ? 8 : 2;
    lines.push(
      `${name.padEnd(36)} ${fmt(ours, digits).padStart(12)} ${fmt(theirs).padStart(12)} ${
        fmt(ratio, 3).padStart(11)
      }  ${note}`,
    );
  }
  lines.push("", "sections:");
  for (const [name, s] of Object.entries(doc.sections as Record<string, Record<string, Json>>)) {
    const why = s.status === "ok"
      ? ""
      : ` — ${String(s.error ?? s.reason ?? "").split("\n")[0].slice(0, 160)}`;
    lines.push(`  ${name.padEnd(9)} ${String(s.status).padEnd(8)} ${fmt(s.wall_ms, 0).padStart(8)} ms${why}`);
  }
  // deno-lint-ignore no-explicit-any
  const kernels = (doc.sections as any)?.kernels?.kernels as Record<string, Json>[] | undefined;
  if (kernels?.length) {
    lines.push("", "decode step b1, per kernel (top 12 by time):");
    lines.push(
      `  ${"op".padEnd(52)} ${"n".padStart(4)} ${"ms".padStart(8)} ${"share".padStart(6)} ${
        "GB/s".padStart(8)
      } ${"of copy".padStart(8)}`,
    );
    for (const k of kernels.slice(0, 12)) {
      lines.push(
        `  ${String(k.op).slice(0, 52).padEnd(52)} ${fmt(k.dispatches, 0).padStart(4)} ${
          fmt(k.ms, 3).padStart(8)
        } ` +
          `${fmt(k.share, 3).padStart(6)} ${fmt(k.GBps, 0).padStart(8)} ${fmt(k.bw_fraction, 3).padStart(8)}`,
      );
    }
  }
  return lines.join("\n");
}
