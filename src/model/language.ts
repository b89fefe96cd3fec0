// InternLM2-Chat-20B forward pass with a KV cache.
// Mirrors InternLM2ForCausalLM / InternLM2DecoderLayer / InternLM2Attention (eager) / InternLM2MLP
// (modeling_internlm2.py as shipped with InternVL-Chat-V1-5; REFERENCE §7).
import { alignTo, type Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { frontView, rowsView, storageOffsetAlign, type Tensor } from "../gpu/tensor.ts";
import {
  linear,
  type LinearWeights,
  type LlmInt8Gemm,
  maxMatvecTokens,
  tiledConfig,
  tiledSplits,
} from "../ops/linear.ts";
import { dp4aPartsWords, languageOutlierCap, LlmInt8Scratch, LlmInt8ScratchPool } from "../ops/llm_int8.ts";
import { rmsNormLinear } from "../ops/rms_norm_linear.ts";
import { gateUpSilu } from "../ops/gate_up_silu.ts";
import { rmsNorm } from "../ops/rms_norm.ts";
import { siluMul } from "../ops/silu_mul.ts";
import { embedTokens, packBf16 } from "../ops/embed_tokens.ts";
import { gatherRows, joinRowGroups } from "../ops/gather_rows.ts";
import { uploadRopeTables } from "../ops/rope.ts";
import { qkvRopeCache } from "../ops/qkv_rope_cache.ts";
import { attentionCausal } from "../ops/attention_causal.ts";
import {
  attentionDecode,
  attentionDecodeFromQkv,
  createAttentionDecodeScratch,
  decodeScratchSplits,
} from "../ops/attention_decode.ts";
import {
  attentionPrefill,
  attentionPrefillScratchFloats,
  attentionPrefillSplits,
  minPrefillTokens,
} from "../ops/attention_prefill.ts";
import { attentionPrefillRows } from "../ops/attention_prefill_rows.ts";
import { queryRowsHold } from "../ops/query_rows.ts";
import type { LanguageDims } from "./dims.ts";
import { type Int8MatmulSetting, llmInt8ForFew, llmInt8GemmFor, weightOnly } from "./int8_matmul.ts";
import {
  createLlmInt8RowsScratch,
  createPairedRowsScratch,
  createRowSquares,
  destroyLlmInt8RowsScratch,
  destroyPairedRowsScratch,
  llmInt8Pack,
  llmInt8PackGroups,
  llmInt8Rows,
  llmInt8RowsGroups,
  type LlmInt8RowsOptions,
  type LlmInt8RowsScratch,
  matvecLlmInt8,
  maxLlmInt8Rows,
  maxLlmInt8RowsK,
  minPairedRows,
  minRowsForSquares,
  type PairedRowsScratch,
  pairRows,
  type QuantizedRows,
  type RowSquares,
  type ScannedRowGroups,
  type ScannedRows,
} from "../ops/matvec_dp4a.ts";
import type { KvCache } from "./kv_cache.ts";
import type { WeightUploader } from "./weight_source.ts";
import type { Tap } from "./vision.ts";
import {
  copyRowHeadPrefetch,
  prefetchRowHeads,
  type RowHeadPrefetch,
  rowHeadPrefetch,
  type RowHeadProduct,
  rowHeadsOn,
} from "../ops/prefetch_row_heads.ts";

export interface LanguageLayerWeights {
  attentionNorm: Tensor; // [D]
  wqkv: LinearWeights; // [(H + 2·Hkv)·Dh, D], rows interleaved per kv group (REFERENCE §7)
  wo: LinearWeights; // [D, H·Dh]
  ffnNorm: Tensor; // [D]
  w1: LinearWeights; // [I, D] gate
  w3: LinearWeights; // [I, D] up
  w2: LinearWeights; // [D, I] down
}

export interface LanguageWeights {
  embed: Tensor; // [V, D] bf16x2
  layers: LanguageLayerWeights[];
  norm: Tensor; // [D]
  output: LinearWeights; // [V, D]
  ropeCos: Tensor; // [maxPositions, Dh/2]
  ropeSin: Tensor; // [maxPositions, Dh/2]
  ropeCosSin: Tensor; // [maxPositions, Dh]: both tables by row (the fused decode attention's layout)
}

export async function loadLanguageWeights(
  w: WeightUploader,
  dims: LanguageDims,
  onLayer?: (layer: number) => void,
): Promise<LanguageWeights> {
  const { hidden: D, vocab: V, heads: H, kvHeads: Hkv, headDim: Dh, intermediate: I } = dims;
  const pre = "language_model.model";
  const raw = await w.source.readRaw(`${pre}.tok_embeddings.weight`, [V, D]);
  if (raw.dtype !== "BF16") {
    throw new Error(`${pre}.tok_embeddings.weight is ${raw.dtype}; the embedding gather kernel reads BF16`);
  }
  const embed = w.gpu.uploadTensor(`${pre}.tok_embeddings`, "bf16x2", [V, D], packBf16(raw.bytes, D));
  const layers: LanguageLayerWeights[] = [];
  for (let l = 0; l < dims.layers; l++) {
    const n = `${pre}.layers.${l}`;
    layers.push({
      attentionNorm: await w.vector(`${n}.attention_norm.weight`, [D]),
      wqkv: await w.linear(`${n}.attention.wqkv`, (H + 2 * Hkv) * Dh, D),
      wo: await w.linear(`${n}.attention.wo`, D, H * Dh),
      ffnNorm: await w.vector(`${n}.ffn_norm.weight`, [D]),
      w1: await w.linear(`${n}.feed_forward.w1`, I, D),
      w3: await w.linear(`${n}.feed_forward.w3`, I, D),
      w2: await w.linear(`${n}.feed_forward.w2`, D, I),
    });
    onLayer?.(l);
  }
  const norm = await w.vector(`${pre}.norm.weight`, [D]);
  const output = await w.linear("language_model.output", V, D);
  // DIFF: dynamic NTK scaling (rope_scaling dynamic ×2) only changes the base past max_position_embeddings;
  // contexts are capped there, so the tables use rope_theta as is.
  return { embed, layers, norm, output, ...uploadRopeTables(w.gpu, dims.ropeTheta, Dh, dims.maxPositions) };
}

/** Activations for `rows` = B·T tokens processed together (a prefill chunk or one decode step). */
export class LanguageScratch {
  readonly hidden: Tensor; // [rows, D] residual stream
  readonly normed: Tensor; // [rows, D]
  readonly qkv: Tensor; // [rows, (H+2Hkv)·Dh]
  readonly q: Tensor; // [rows, H·Dh]
  readonly attn: Tensor; // [rows, H·Dh]
  readonly gate: Tensor; // [rows, I]
  readonly up: Tensor; // [rows, I]
  readonly act: Tensor; // [rows, I]
  readonly last: Tensor; // [B, D] the rows that produce logits
  readonly lastNormed: Tensor; // [B, D]
  /**
   * Split-K partials of attentionDecode, so one query per head still spreads over the whole GPU: for a
   * decode step (T = 1, B rows) and for a short chunk of one sequence (a follow-up round's new tokens,
   * T ≤ 8), which runs as a decode step of T rows (oneSequence). attentionCausal's few query tiles streamed
   * the whole kept cache alone there (H100, 8 tokens after 1842: 38.7 ms of attention per chunk without
   * splits, 8.4 ms with them, 4.0 ms as decode rows). Null for the prompt pass.
   */
  readonly attnSplits: Tensor | null;
  /**
   * INT8_MATMUL=llm-int8: the int8 side of rows of width D (`hidden`; also the LM head's B rows) and of the
   * feed-forward width (`inter`) — for chunks of at most 8 rows (decode steps, short chunks). Null otherwise.
   */
  readonly llmInt8: {
    hidden: LlmInt8RowsScratch;
    inter: LlmInt8RowsScratch | null;
    /**
     * A step in row groups: two groups at a time, each quantized apart into its part of these, multiply in
     * one pass (`pairRows`: each weight byte streamed once for 16 rows). Null otherwise.
     */
    pair: { hidden: PairedRowsScratch; inter: PairedRowsScratch } | null;
    threshold: number; // the checkpoint's llm_int8_threshold
  } | null;
  /** INT8_MATMUL=llm-int8 for chunks of more than 8 rows (prompts): the LLM.int8 GEMM's scratch. */
  readonly llmInt8Gemm: LlmInt8Gemm | null;
  /**
   * A weight-only step of at most maxRowHeadRows rows reads the heads of each product's weight rows into L2
   * while the product before it ends (src/ops/prefetch_row_heads.ts): the setting then (per product), and one
   * sink per such dispatch of the step (wqkv, wo, w1, w3, w2 of every layer, then the LM head), so no two of
   * them share a written buffer.
   */
  readonly rowHeads: { setting: RowHeadPrefetch; sinks: Tensor[] } | null;
  /**
   * A decode step of more rows than the matrix-vector kernels take: its rows in groups of at most
   * maxMatvecTokens ([first row, rows], `stepRowGroups`), each group's products those of a step of its rows,
   * streaming the weights again (`languageForward`; with LLM.int8 two groups a product); with LLM.int8 each
   * group's outlier columns are those of its own rows (a step of up to 8 rows has the whole step's), and its
   * Σx² parts of the hidden rows have a tensor of its own. The LM head too runs group by group (but for a
   * step that is one LLM.int8 pair), each group's logits at the start of a row of `logits` ([groups, 8·V
   * rounded up to 256 bytes]: logits rows of 4·V bytes start on offsets a binding cannot take), joined into
   * the step's logits after. Null otherwise.
   */
  readonly rowGroups: {
    rows: [number, number][];
    squares: Tensor[];
    /** All groups' `squares` as rows of one tensor, each group's 8 a view, when those start on bindable offsets. */
    allSquares: Tensor | null;
    logits: Tensor;
    /**
     * LLM.int8, three groups: `logits`' buffer as [2, 16·V rounded up to 256 bytes], the pair's 16 rows of
     * logits in the first row and the third group's in the second. Null otherwise.
     */
    pairLogits: Tensor | null;
  } | null;
  /**
   * Split-K partials of the tiled products (`tiledSplits`, src/ops/linear.ts) of a weight-only pass of more than
   * 8 rows: a short prompt's tiles alone are one row of 48–256 workgroups at the real widths, and its products
   * ran at a third of the GEMM's rate (PERF.md v64). Sized for this scratch's rows; null where none splits.
   */
  readonly splitK: Tensor | null;
  /**
   * Partial rows of the prompt attention's split keys (`attentionPrefill`'s scratch): a few new tokens over a
   * kept conversation (a follow-up round's one pass) make a few dozen tiles, each of which walked every key
   * (PERF.md v70). A fixed size, whatever the rows; null on a CPU adapter (its prompts take
   * attentionPrefillRows), for decode-sized scratch (attnSplits) and where no pass through it splits.
   */
  readonly attnPartials: Tensor | null;

  constructor(
    gpu: Gpu,
    dims: LanguageDims,
    readonly batch: number,
    readonly tokens: number,
    private readonly matmul: Int8MatmulSetting = weightOnly,
    /** Where the LLM.int8 GEMM's scratch comes from (shared by every prompt); null: a scratch of its own. */
    private readonly gemmPool: LlmInt8ScratchPool | null = null,
    /** Also seen through `front` as fewer tokens (the kept scratch of src/model/prompt_scratch_pool.ts). */
    private readonly frontViews = false,
  ) {
    const rows = batch * tokens;
    const { hidden: D, heads: H, kvHeads: Hkv, headDim: Dh, intermediate: I } = dims;
    const t = (name: string, width: number, n = rows) => gpu.createTensor(`lm.${name}`, "f32", [n, width]);
    this.hidden = t("hidden", D);
    this.normed = t("normed", D);
    this.qkv = t("qkv", (H + 2 * Hkv) * Dh);
    this.q = t("q", H * Dh);
    this.attn = t("attn", H * Dh);
    this.gate = t("gate", I);
    this.up = t("up", I);
    this.act = t("act", I);
    this.last = t("last", D, batch);
    this.lastNormed = t("last_normed", D, batch);
    const decodeRows = tokens === 1 ? batch : batch === 1 && tokens <= maxMatvecTokens ? tokens : 0;
    this.attnSplits = decodeRows
      ? createAttentionDecodeScratch(gpu, "lm.attn_splits", {
        batch: decodeRows,
        numHeads: H,
        headDim: Dh,
        maxSplits: decodeScratchSplits(decodeRows, dims.kvHeads, tokens > 1),
      })
      : null;
    // Only where a pass through this scratch can split: its fewest tokens (a front view's, else its own) make
    // fewer tiles than the split target. A long prompt's scratch fills the GPU with tiles and never splits.
    const fewestTokens = frontViews ? Math.min(tokens, Math.floor(fewRows() / batch) + 1) : tokens;
    const heads = { numHeads: H, numKvHeads: Hkv, headDim: Dh };
    const mayPartial = attentionPrefillSplits({ batch, tokens: fewestTokens, startPos: 0, ...heads }) > 0;
    this.attnPartials = decodeRows || gpu.isFallbackAdapter || !mayPartial
      ? null
      : gpu.createTensor("lm.attn_partials", "f32", [attentionPrefillScratchFloats(Dh)]);
    const grouped = tokens === 1 && batch > maxMatvecTokens && batch <= maxGroupedStepRows(matmul) &&
      groupable(dims);
    const few = rows <= maxLlmInt8Rows;
    // Grouped: the rows passes of one group at a time.
    const rowsScratch = (name: string, width: number, n: number) =>
      createLlmInt8RowsScratch(gpu, `lm.llm_int8.${name}`, grouped ? maxLlmInt8Rows : n, width);
    // A grouped LLM.int8 step's groups, all quantized in one rows pass (a pair and a third group past 16 rows).
    const pairGroups = batch > 2 * maxLlmInt8Rows ? 3 : 2;
    this.llmInt8 =
      llmInt8ForFew(matmul.mode, rows) && (batch <= maxLlmInt8Rows || grouped) && llmInt8RowsFit(dims)
        ? {
          hidden: rowsScratch("hidden", D, few ? rows : batch),
          inter: few || grouped ? rowsScratch("inter", I, rows) : null,
          pair: grouped && batch > maxLlmInt8Rows
            ? {
              hidden: createPairedRowsScratch(gpu, "lm.llm_int8.pair_hidden", D, pairGroups),
              inter: createPairedRowsScratch(gpu, "lm.llm_int8.pair_inter", I, pairGroups),
            }
            : null,
          threshold: matmul.threshold,
        }
        : null;
    const groups = stepRowGroups(batch, this.llmInt8?.pair != null && rowsBindableAnywhere(dims));
    // A pair of groups (LlmInt8 `pair`) leaves its rows' Σout² as 16 rows of one tensor: the groups' own, as
    // views where each group's 8 rows start on a bindable offset.
    const squareViews = this.llmInt8 !== null && grouped &&
      (maxLlmInt8Rows * Math.ceil(D / 8) * 4) % storageOffsetAlign === 0;
    const allSquares = squareViews
      ? createRowSquares(gpu, "lm.llm_int8.squares", D, groups.length * maxLlmInt8Rows)
      : null;
    this.rowGroups = grouped
      ? {
        rows: groups,
        squares: this.llmInt8
          ? groups.map((_, g) =>
            squareViews
              ? rowsView(allSquares!, g * maxLlmInt8Rows, maxLlmInt8Rows)
              : createRowSquares(gpu, `lm.llm_int8.squares${g}`, D)
          )
          : [],
        allSquares,
        ...createGroupLogits(
          gpu,
          groups.length,
          this.llmInt8?.pair != null && groups.length === 3,
          dims.vocab,
        ),
      }
      : null;
    // Up to 2 rows (PERF.md v53, H100: batch 2 190.7 → 193.6 tokens/s; batch 3 252.8 → 251.7 and 8 392.3 →
    // 391.0 with it); not in LLM.int8's decode (v52: slower there).
    this.rowHeads = rows <= maxRowHeadRows && !llmInt8ForFew(matmul.mode, rows) && rowHeadsOn(rowHeadPrefetch)
      ? {
        setting: copyRowHeadPrefetch(rowHeadPrefetch),
        sinks: Array.from(
          { length: 5 * dims.layers + 1 },
          (_, i) => gpu.createTensor(`lm.row_heads.${i}`, "u32", [1]),
        ),
      }
      : null;
    this.ownsGemmScratch = gemmPool === null;
    // A step in row groups multiplies group by group like a step of ≤ 8 rows: no GEMM.
    this.llmInt8Gemm = few || grouped
      ? null
      : llmInt8GemmFor(matmul, () => gemmPool?.forTokens(rows) ?? languageGemmScratch(gpu, dims, rows));
    // Enough for this scratch's rows and, with frontViews, for every front view of it: a pass of fewer rows
    // through the front must split as a scratch of its own would, so that it gives the same bits.
    const products: [number, number][] = [[(H + 2 * Hkv) * Dh, D], [D, H * Dh], [I, D], [D, I]];
    const viewRows = frontViews
      ? Array.from({ length: Math.max(0, rows - fewRows()) }, (_, i) => fewRows() + 1 + i)
      : [rows];
    const splitFloats = rows <= maxMatvecTokens || grouped || this.llmInt8Gemm ? 0 : Math.max(
      ...viewRows.flatMap((T) =>
        products.map(([N, K]) => {
          const splits = tiledSplits(T, N, K, tiledConfig(T, N, K, false, gpu.isFallbackAdapter), Infinity);
          return splits > 1 ? splits * T * N : 0;
        })
      ),
    );
    this.splitK = splitFloats > 0 ? gpu.createTensor("lm.split_k", "f32", [splitFloats]) : null;
  }

  private readonly ownsGemmScratch: boolean;

  /**
   * Whether the LM head of this scratch's `batch` rows (one a sequence) takes the LLM.int8 rows: where the
   * mode runs a product of that many rows so (`llm-int8-batched`: a lone sequence's prompt ends in a
   * weight-only head, as its steps run).
   */
  headLlmInt8(): boolean {
    return this.llmInt8 !== null && llmInt8ForFew(this.matmul.mode, this.batch);
  }

  /**
   * This scratch seen as `tokens` tokens a row (at most its own): the same buffers, each activation's front,
   * so that a pass of fewer tokens binds exactly the buffers a pass of more binds and its bind groups can come
   * from a DispatchCache (src/model/prompt_scratch_pool.ts). Only for scratch of more than 8 rows, whose parts
   * do not depend on the row count (no split-K attention, LLM.int8 rows, row groups or row-head reads). The
   * view owns nothing: destroy the scratch, never the view.
   */
  front(tokens: number): LanguageScratch {
    const rows = this.batch * tokens;
    const rowsAlike = this.attnSplits === null && this.rowGroups === null;
    if (
      !(this.frontViews && rowsAlike && Number.isInteger(tokens) && tokens <= this.tokens && rows > fewRows())
    ) {
      throw new Error(
        `LanguageScratch.front(${tokens}): a scratch made for front views of ${this.tokens} tokens is seen as ` +
          `${fewRows() + 1}–${this.tokens} tokens a row only`,
      );
    }
    const v = (t: Tensor) => frontView(t, [rows, t.shape[1]]);
    // The pool's GEMM scratch is taken again: a longer prompt may have replaced it since this was made.
    const llmInt8Gemm = this.gemmPool
      ? llmInt8GemmFor(this.matmul, () => this.gemmPool!.forTokens(rows))
      : this.llmInt8Gemm;
    // Object.create: the view shares every other field (LLM.int8 rows of the B last rows, the settings) as is.
    return Object.assign(Object.create(LanguageScratch.prototype) as LanguageScratch, this, {
      tokens,
      hidden: v(this.hidden),
      normed: v(this.normed),
      qkv: v(this.qkv),
      q: v(this.q),
      attn: v(this.attn),
      gate: v(this.gate),
      up: v(this.up),
      act: v(this.act),
      llmInt8Gemm,
      ownsGemmScratch: false,
    });
  }

  destroy(): void {
    for (const x of Object.values(this)) if (x && typeof x === "object" && "buffer" in x) x.buffer.destroy();
    if (this.llmInt8) {
      destroyLlmInt8RowsScratch(this.llmInt8.hidden);
      if (this.llmInt8.inter) destroyLlmInt8RowsScratch(this.llmInt8.inter);
      if (this.llmInt8.pair) {
        destroyPairedRowsScratch(this.llmInt8.pair.hidden);
        destroyPairedRowsScratch(this.llmInt8.pair.inter);
      }
    }
    if (this.ownsGemmScratch) this.llmInt8Gemm?.scratch.destroy();
    for (const t of this.rowHeads?.sinks ?? []) t.buffer.destroy();
    for (const t of this.rowGroups?.squares ?? []) t.buffer.destroy();
    this.rowGroups?.allSquares?.buffer.destroy();
    this.rowGroups?.logits.buffer.destroy();
  }
}

/**
 * The row groups' logits (LanguageScratch.rowGroups): one buffer, seen as [groups, 8·V] and, for a pair and a
 * third group, as [2, 16·V] (each row rounded up to 256 bytes).
 */
function createGroupLogits(gpu: Gpu, groups: number, pairAndThird: boolean, V: number) {
  const row = (rows: number) => alignTo(rows * V * 4, storageOffsetAlign) / 4;
  const perGroup = row(maxMatvecTokens), perPair = row(2 * maxLlmInt8Rows);
  const all = gpu.createTensor("lm.group_logits", "f32", [
    Math.max(groups * perGroup, pairAndThird ? 2 * perPair : 0),
  ]);
  return {
    logits: frontView(all, [groups, perGroup]),
    pairLogits: pairAndThird ? frontView(all, [2, perPair]) : null,
  };
}

/**
 * Most rows a decode step runs in row groups of at most maxMatvecTokens through the matrix-vector kernels,
 * each group streaming the weights again, instead of one pass of the tiled GEMMs, which stream them once but
 * took 56–58 ms a step at 9–16 rows with LLM.int8 and 108–111 ms weight-only (14.7 and 20.3 ms at 8 rows).
 * H100, PERF.md v55, tokens/s, GEMM → groups: LLM.int8 at 9 rows 161 → 352, 16 277.7 → 539.8, 32 529.8 →
 * 581.6, but 48 753.4 → 604.1. Weight-only, since the tiled GEMM splits K where its tiles are few (v64, H200,
 * tokens/s): 40 rows 429.1 in groups → 472.0 on the GEMM, 48 431.3 → 562.2 (64 rows on the GEMM 501.4 before
 * split K, 717.9 with it); and up to 32 rows in 32×128 tiles (v65): a layer's products at 24 and 32 rows take
 * 0.96–0.97 ms there against 1.15 and 1.54 in groups of 8, at 16 rows 0.93 against 0.77. LLM.int8, since its
 * GEMM splits K too (v67, H200, tokens/s, groups → GEMM): 17 rows 522–527 → 436–439, 24 665–667 → 596, 28
 * 613 → 677, 32 672 → 774. Past these the GEMMs' single weight stream wins (v79, with pairs: 28 rows 688.0 →
 * 694.6, 32 789.6 → 785.5 in groups). With LLM.int8 a step has at most three groups: its rows passes take
 * them at once, a part of the paired scratch each (`languageForward`).
 */
export function maxGroupedStepRows(matmul: Int8MatmulSetting): number {
  return llmInt8ForFew(matmul.mode, maxMatvecTokens + 1) ? 24 : 16;
}

/** Most rows whose scratch depends on the row count (split-K attention, LLM.int8 rows, row-head reads). */
function fewRows(): number {
  return Math.max(maxMatvecTokens, maxLlmInt8Rows, maxRowHeadRows);
}

/** The widths of the activations a step's row groups bind a range of. */
function groupedWidths(d: LanguageDims): number[] {
  return [d.hidden, (d.heads + 2 * d.kvHeads) * d.headDim, d.heads * d.headDim, d.intermediate];
}

/** Whether every row group of a step starts on a bindable offset in each activation (K a multiple of 8). */
function groupable(d: LanguageDims): boolean {
  return groupedWidths(d).every((k) => (maxMatvecTokens * 4 * k) % storageOffsetAlign === 0);
}

/** Whether a row group may start at any row (every activation's rows whole multiples of 256 bytes). */
function rowsBindableAnywhere(d: LanguageDims): boolean {
  return groupedWidths(d).every((k) => (4 * k) % storageOffsetAlign === 0);
}

/**
 * The row groups of a grouped step ([first row, rows]): groups of maxMatvecTokens rows, the last one shorter;
 * or, with `even` (LLM.int8 multiplying two groups as one product, `pairRows`) and at most two groups, two
 * groups as even as can be, the first the larger. A pair's product costs about what its first group's rows
 * take on each half of the kernel (H200, µs a layer's four products, v79's probe): 10 rows 274.6 as 8 + 2
 * (two calls) against 223.7 as 5 + 5, 12 rows 273.5 as 8 + 4 against 238.2 as 6 + 6, 14 rows 274.2 against
 * 256.7 as 7 + 7.
 */
export function stepRowGroups(rows: number, even: boolean): [number, number][] {
  if (even && rows > maxMatvecTokens && rows <= 2 * maxMatvecTokens) {
    const first = Math.ceil(rows / 2);
    return [[0, first], [first, rows - first]];
  }
  return Array.from({ length: Math.ceil(rows / maxMatvecTokens) }, (_, g): [number, number] => {
    const from = g * maxMatvecTokens;
    return [from, Math.min(maxMatvecTokens, rows - from)];
  });
}

// Outputs up to the FFN width: a prompt pass's LM head (the vocab, more than 8 sequences) stays weight-only,
// as its compact outlier weights would take vocab × cap bytes.
function gemmWidths(d: LanguageDims): [maxK: number, maxN: number] {
  return [
    Math.max(d.hidden, d.intermediate),
    Math.max(d.intermediate, (d.heads + 2 * d.kvHeads) * d.headDim),
  ];
}

/** The most rows (batch rows, or tokens of one sequence) a step reads its products' row heads ahead for. */
export const maxRowHeadRows = 2;

/**
 * The LLM.int8 GEMM scratch of a prompt (or a step) of `rows` rows, with room to split K where the GEMM's
 * tiles are few: a short prompt's or a 33–64-row step's products are one row of tiles (PERF.md v66).
 */
function languageGemmScratch(gpu: Gpu, d: LanguageDims, rows: number): LlmInt8Scratch {
  const [maxK, maxN] = gemmWidths(d);
  const parts = dp4aPartsWords(rows, maxK, maxN);
  return new LlmInt8Scratch(gpu, "lm.llm_int8_gemm", rows, maxK, maxN, languageOutlierCap, parts);
}

/** The pool of LLM.int8 GEMM scratch that a model's prompt passes share (INT8_MATMUL=llm-int8(-prefill)). */
export function languageGemmPool(gpu: Gpu, d: LanguageDims): LlmInt8ScratchPool {
  return new LlmInt8ScratchPool(gpu, "lm.llm_int8_gemm", ...gemmWidths(d), languageOutlierCap, true);
}

/** Whether the rows path of INT8_MATMUL=llm-int8 takes this model's widths (K a multiple of 4, ≤ 16384). */
function llmInt8RowsFit(d: LanguageDims): boolean {
  return [d.hidden, d.intermediate].every((k) => k % 4 === 0 && k <= maxLlmInt8RowsK);
}

/** Int8 weights without bias: what the LLM.int8 kernels multiply. */
function plainInt8(...ws: LinearWeights[]): boolean {
  return ws.every((w) => w.kind === "int8" && !w.bias);
}

export interface LanguageInputs {
  ids: Tensor; // [B·T] i32
  imageRow: Tensor; // [B·T] i32: −1 for text, else the row of imageEmbeds for an <IMG_CONTEXT> position
  imageEmbeds: Tensor | null; // [M, D]
  positions: Tensor; // [B·T] i32 rotary positions (cumsum(attention_mask) − 1)
  lastRows: Tensor; // [B] i32 rows of the chunk whose logits are wanted
}

/**
 * Runs B·T new tokens through the model, appending their keys/values at cache positions
 * cache.length … cache.length+T−1, and writes the logits of `lastRows` to logits: [B, V].
 * The caller advances cache.length after recording.
 */
export function languageForward(
  r: Recorder,
  w: LanguageWeights,
  dims: LanguageDims,
  cache: KvCache,
  s: LanguageScratch,
  inputs: LanguageInputs,
  logits: Tensor,
  tap?: Tap,
): void {
  const { batch: B, tokens: T } = s;
  const { heads: H, kvHeads: Hkv, headDim: Dh, eps } = dims;
  const heads = { numHeads: H, numKvHeads: Hkv, headDim: Dh };
  // A CPU adapter (Mesa's llvmpipe) gains nothing from spreading a decode attention's keys over workgroups
  // and pays for each one's barriers and for the combine pass: one split took the tiny model's decode step
  // from 19.5 to 14.3 ms at ctx 512 (68 → 33 at 4096) there. attentionDecode's own tests run its splits.
  const cpuSplits = r.fallbackAdapter ? 1 : undefined;
  const rowsOnCpu = r.fallbackAdapter && queryRowsHold(Dh);
  const startPos = cache.length;
  if (startPos + T > cache.capacity) {
    throw new Error(`KV cache holds ${cache.capacity} positions; ${startPos} used + ${T} new do not fit`);
  }
  embedTokens(r, w.embed, inputs.ids, inputs.imageRow, inputs.imageEmbeds, s.hidden);
  tap?.("lm.embeddings", -1, s.hidden, r);
  // The rows in the step's row groups (LanguageScratch.rowGroups), each bound as a range of the activations,
  // or all of them as one.
  const groups: [number, number][] = s.rowGroups?.rows ?? [[0, B * T]];
  const part = (t: Tensor, g: number) => s.rowGroups ? rowsView(t, ...groups[g]) : t;
  // Decode-sized chunks fold the RMSNorms into the int8 matrix-vector kernels (no norm pass, no normed copy).
  const fusable = groups.every(([, n]) => n <= maxMatvecTokens) && dims.hidden % 4 === 0;
  // INT8_MATMUL=llm-int8, prompt-sized chunks: LLM.int8's GEMM; weight-only ones: split K where few tiles.
  const o = { llmInt8: s.llmInt8Gemm, splitK: s.splitK };
  // LLM.int8 rows: each group's Σx² of its hidden rows as the last product into them (wo, w2) left it, for
  // the next norm, from minRowsForSquares rows on, and in every group that a rows pass takes with the others
  // (`allInOnePass`: the pass's groups all take them or none does) (each group in a tensor of its own: a
  // shared one would be overwritten by the next group before the norm reads it).
  const sums: (RowSquares | undefined)[] = groups.map(() => undefined);
  const squares = (few: LanguageScratch["llmInt8"], g: number) =>
    few && (groups[g][1] >= minRowsForSquares || allInOnePass)
      ? s.rowGroups?.squares[g] ?? few.hidden.squares
      : undefined;
  // A pair's: both groups' rows of the joint tensor (the second group has ≥ minPairedRows ≥ minRowsForSquares).
  const pairSquares = (u: number[]) => {
    const all = s.rowGroups?.allSquares;
    return all ? rowsView(all, u[0] * maxLlmInt8Rows, 2 * maxLlmInt8Rows) : undefined;
  };
  /** What a unit's product left for its groups' next norms (a pair's: each group's 8 rows of them). */
  const leave = (u: number[], left: RowSquares | null) =>
    u.forEach((g) => {
      sums[g] = left && u.length === 2
        ? { squares: s.rowGroups!.squares[g], parts: left.parts }
        : left ?? undefined;
    });
  // Weight-only steps of 1–2 rows: each product's row heads read into L2 in the tail of the product before,
  // into sink 5·layer + (0 wqkv, 1 wo, 2 w1, 3 w3, 4 w2), the LM head's 5·layers.
  const ahead = (lw: LinearWeights, product: RowHeadProduct, sink: number) => {
    const rh = s.rowHeads;
    if (!rh || !fusable || lw.kind !== "int8" || lw.weight.shape[1] % 16 !== 0) return;
    const read = rh.setting[product];
    if (read.bytesPerRow > 0) prefetchRowHeads(r, lw.weight, rh.sinks[sink], read);
  };
  // LLM.int8 in row groups: two groups at a time take one product (`pairRows`), each quantized apart as a
  // group of its own is; a last odd group alone.
  const pair = s.llmInt8?.pair ?? null;
  const units: number[][] = [];
  for (let g = 0; g < groups.length; g += units[units.length - 1].length) {
    units.push(pair && g + 1 < groups.length && groups[g + 1][1] >= minPairedRows ? [g, g + 1] : [g]);
  }
  // Every group's LLM.int8 rows in one pass: a pair, and past 16 rows a third group alone.
  const allInOnePass = pair !== null && units[0].length === 2 &&
    units.slice(1).every((u) => u.length === 1) &&
    groups.length <= pair.hidden.groups.length;
  const groupRows = groups.map(([, n]) => n);
  // LLM.int8 rows: the attention's combine pass does the rows scan of its output (one dispatch less), each
  // row group's apart where every group's rows pass is one (a step of 9–24 rows).
  const scanGroups = allInOnePass ? { rows: groupRows, joint: pair.hidden } : undefined;
  const span = (t: Tensor, u: number[]) =>
    s.rowGroups ? rowsView(t, groups[u[0]][0], u.reduce((n, g) => n + groups[g][1], 0)) : t;
  /**
   * The LLM.int8 rows of the activation x for every unit: one group's into `single`; in row groups, each
   * group's into its part of `joint` with its own options (the norm's Σx² are a group's own) — all groups in
   * one rows pass where their Σx² parts are their rows of the step's one tensor (or none has them), else a pass
   * each — a pair's as one product's rows.
   */
  const stepRows = (
    x: Tensor,
    single: LlmInt8RowsScratch,
    joint: PairedRowsScratch | undefined,
    opts: (g: number) => LlmInt8RowsOptions,
  ): QuantizedRows[] => {
    if (!joint) {
      // One scratch: one group (a step of up to 8 rows), its rows pass right before its products.
      if (units.length !== 1) {
        throw new Error(`languageForward: ${units.length} row groups without a paired scratch`);
      }
      return [llmInt8Rows(r, part(x, 0), single, opts(0))];
    }
    // Every group's rows passes run before the products, so each group needs a part of its own, and a pair's
    // product reads the first two parts (pairRows).
    if (groups.length > joint.groups.length || units.some((u, i) => i > 0 && u.length > 1)) {
      throw new Error(`languageForward: row groups ${JSON.stringify(units)} in ${joint.groups.length} parts`);
    }
    const o = groups.map((_, g) => opts(g));
    const given = o.map((og) => og.norm?.sums);
    // Each group's parts in its own view of the step's one tensor (its rows from row 8g).
    const all = s.rowGroups?.allSquares;
    const inAll = all && given.every((v, g) => v?.squares === s.rowGroups?.squares[g]);
    if (allInOnePass && (given.every((v) => !v) || inAll)) {
      const sums = inAll
        ? { squares: rowsView(all, 0, groups.length * maxLlmInt8Rows), parts: given.map((v) => v!.parts) }
        : undefined;
      const norm = o[0].norm && { weight: o[0].norm.weight, eps: o[0].norm.eps };
      return llmInt8RowsGroups(r, x, groupRows, joint, { threshold: o[0].threshold, norm, sums });
    }
    return units.map((u) => {
      if (u.length === 1) return llmInt8Rows(r, part(x, u[0]), joint.groups[u[0]], o[u[0]]);
      const [a, b] = u.map((g) => llmInt8Rows(r, part(x, g), joint.groups[g], o[g]));
      return pairRows(a, b, joint, span(x, u));
    });
  };
  // Each product runs group by group; the attention takes every row at once.
  w.layers.forEach((lw, l) => {
    ahead(lw.wqkv, "wqkv", 5 * l);
    // INT8_MATMUL=llm-int8 with at most 8 rows (a group): bitsandbytes' LLM.int8 through dot4I8Packed.
    const few = s.llmInt8?.inter && plainInt8(lw.wqkv, lw.wo, lw.w1, lw.w3, lw.w2) ? s.llmInt8 : null;
    const threshold = few?.threshold;
    if (!few) sums.fill(undefined);
    const fusedQkv = !few && fusable && lw.wqkv.kind === "int8";
    if (few) {
      const xs = stepRows(s.hidden, few.hidden, pair?.hidden, (g) => ({
        norm: { weight: lw.attentionNorm, eps, sums: sums[g] },
        threshold,
      }));
      units.forEach((u, i) => matvecLlmInt8(r, xs[i], lw.wqkv, span(s.qkv, u)));
    } else {
      groups.forEach((_, g) => {
        const hidden = part(s.hidden, g), qkv = part(s.qkv, g);
        if (fusedQkv) {
          rmsNormLinear(r, hidden, lw.attentionNorm, eps, lw.wqkv, qkv);
        } else {
          const normed = part(s.normed, g);
          rmsNorm(r, hidden, lw.attentionNorm, normed, eps);
          linear(r, normed, lw.wqkv, qkv, o);
        }
      });
    }
    if (fusedQkv) ahead(lw.wo, "wo", 5 * l + 1);
    // Taps at each int8 product's boundary (the bench's per-product check against PyTorch).
    tap?.("lm.qkv", l, s.qkv, r);
    const kv = [cache.k[l], cache.v[l], cache.keyValid] as const;
    const scan = few ? { scratch: few.hidden, threshold: few.threshold, groups: scanGroups } : undefined;
    let attnScanned: ScannedRows | ScannedRowGroups | null = null;
    if (s.attnSplits && T === 1 && Dh % 8 === 0) {
      // A decode step: the attention kernel rotates q and k and appends k, v itself (one dispatch less).
      const rope = { positions: inputs.positions, cosSin: w.ropeCosSin };
      attnScanned = attentionDecodeFromQkv(r, s.qkv, rope, ...kv, s.attn, {
        batch: B,
        kvLen: startPos + 1,
        ...heads,
        scratch: s.attnSplits,
        splits: cpuSplits,
        scan,
      });
    } else {
      // q, k rotated; k and v appended to the cache at startPos … startPos+T−1 (one dispatch).
      qkvRopeCache(r, s.qkv, inputs.positions, w.ropeCos, w.ropeSin, s.q, cache.k[l], cache.v[l], {
        batch: B,
        tokens: T,
        startPos,
        ...heads,
      });
      if (s.attnSplits && !(rowsOnCpu && T > 1)) {
        // A follow-up chunk (its T tokens as T rows over the one kept sequence, query t seeing t more keys),
        // or a decode step whose head dim the fused kernel does not take: keys split over many workgroups,
        // each K/V row read once per query group.
        attnScanned = attentionDecode(r, s.q, ...kv, s.attn, {
          batch: T === 1 ? B : T,
          kvLen: startPos + 1,
          ...heads,
          scratch: s.attnSplits,
          splits: cpuSplits,
          oneSequence: T > 1,
          scan,
        });
      } else if (rowsOnCpu) {
        // A CPU adapter (llvmpipe: the CI host) runs the tiled kernels' barriers and shared loads slowly;
        // rows held in registers were 9.5× faster there (the tiny model's 1800-token prompt: 4.49 → 0.47 s of
        // attention over 2 layers; src/ops/attention_prefill_rows.ts), and a follow-up chunk's 8 rows over
        // the kept cache run there too (8 tokens after 1842, 2 layers: 75 → 11 ms weight-only, 62 → 8.6
        // with llm-int8, against attentionDecode's one split).
        attentionPrefillRows(r, s.q, ...kv, s.attn, { batch: B, tokens: T, startPos, ...heads });
      } else if (T >= minPrefillTokens || startPos > 0) {
        // Prompt pass: 64-row register-blocked tiles; short batched prompts keep attentionCausal, whose
        // tiles would each stream a kept conversation's whole cache alone (a follow-up round in one pass).
        const scratch = s.attnPartials ?? undefined;
        attentionPrefill(r, s.q, ...kv, s.attn, { batch: B, tokens: T, startPos, ...heads, scratch });
      } else {
        attentionCausal(r, s.q, ...kv, s.attn, { batch: B, tokens: T, startPos, ...heads });
      }
    }
    tap?.("lm.attn", l, s.attn, r);
    if (few) {
      const attn = !attnScanned
        ? stepRows(s.attn, few.hidden, pair?.hidden, () => ({ threshold }))
        : "joint" in attnScanned
        ? llmInt8PackGroups(r, attnScanned)
        : [llmInt8Pack(r, attnScanned)];
      units.forEach((u, i) => {
        const sq = u.length === 1 ? squares(few, u[0]) : pairSquares(u);
        leave(u, matvecLlmInt8(r, attn[i], lw.wo, span(s.hidden, u), { accumulate: true, squares: sq }));
      });
    } else {
      groups.forEach((_, g) => {
        linear(r, part(s.attn, g), lw.wo, part(s.hidden, g), { ...o, accumulate: true }); // h = h + wo(attn)
      });
    }
    if (!few) {
      ahead(lw.w1, "gateUp", 5 * l + 2);
      ahead(lw.w3, "gateUp", 5 * l + 3);
    }
    tap?.("lm.attn_out", l, s.hidden, r);
    const fusedGateUp = !few && fusable && lw.w1.kind === "int8" && lw.w3.kind === "int8" && !lw.w1.bias &&
      !lw.w3.bias;
    if (few) {
      const xs = stepRows(s.hidden, few.hidden, pair?.hidden, (g) => ({
        norm: { weight: lw.ffnNorm, eps, sums: sums[g] },
        threshold,
      }));
      units.forEach((u, i) => matvecLlmInt8(r, xs[i], lw.w1, span(s.act, u), { up: lw.w3 })); // silu(gate)·up
    } else {
      groups.forEach((_, g) => {
        const hidden = part(s.hidden, g), act = part(s.act, g);
        if (fusedGateUp) {
          gateUpSilu(r, hidden, lw.ffnNorm, eps, lw.w1, lw.w3, act);
        } else {
          const normed = part(s.normed, g), gate = part(s.gate, g), up = part(s.up, g);
          rmsNorm(r, hidden, lw.ffnNorm, normed, eps);
          linear(r, normed, lw.w1, gate, o);
          // LLM.int8: w3 takes the int8 rows w1's call made of the same input (both int8: both took that path).
          linear(r, normed, lw.w3, up, {
            ...o,
            llmInt8RowsReady: lw.w1.kind === "int8" && lw.w3.kind === "int8",
          });
          siluMul(r, gate, up, act);
        }
      });
    }
    if (fusedGateUp) ahead(lw.w2, "w2", 5 * l + 4);
    tap?.("lm.act", l, s.act, r);
    if (few) {
      const xs = stepRows(s.act, few.inter!, pair?.inter, () => ({ threshold }));
      units.forEach((u, i) => {
        const sq = u.length === 1 ? squares(few, u[0]) : pairSquares(u);
        leave(u, matvecLlmInt8(r, xs[i], lw.w2, span(s.hidden, u), { accumulate: true, squares: sq }));
      });
    } else {
      groups.forEach((_, g) => {
        // h = h + w2(silu(w1 x) · w3 x)
        linear(r, part(s.act, g), lw.w2, part(s.hidden, g), { ...o, accumulate: true });
      });
    }
    // LLM.int8 prompt pass: [count, columns…] of the w2 input's outlier columns (benchmarks read the count).
    if (s.llmInt8Gemm) tap?.("lm.llm_int8.w2_outliers", l, s.llmInt8Gemm.scratch.outliers, r);
    tap?.("lm.layer", l, s.hidden, r);
  });
  ahead(w.output, "head", 5 * w.layers.length);
  gatherRows(r, s.hidden, inputs.lastRows, s.last);
  // A step that is one pair of LLM.int8 row groups takes them as one product there too, its rows the step's
  // logits from row 0; a pair and a third group, one rows pass and two products, then a join. Another grouped
  // step's head runs group by group (LanguageScratch.rowGroups' logits), then joins; else it takes the B rows
  // at once.
  if (pair && s.llmInt8 && s.headLlmInt8() && plainInt8(w.output) && units[0].length === 2) {
    const pairLogits = s.rowGroups?.pairLogits;
    if (units.length === 1 || (allInOnePass && pairLogits)) {
      const xs = llmInt8RowsGroups(r, s.last, groupRows, pair.hidden, {
        norm: { weight: w.norm, eps },
        threshold: s.llmInt8.threshold,
      });
      if (units.length === 1) {
        matvecLlmInt8(r, xs[0], w.output, logits);
        return;
      }
      xs.forEach((x, i) => {
        matvecLlmInt8(r, x, w.output, frontView(rowsView(pairLogits!, i, 1), [x.rows, dims.vocab]));
      });
      joinRowGroups(r, pairLogits!, 2 * maxLlmInt8Rows, logits);
      return;
    }
  }
  const groupLogits = s.rowGroups?.logits;
  const headGroups: [number, number][] = groupLogits ? groups : [[0, B]];
  headGroups.forEach(([, n], g) => {
    const out = groupLogits ? frontView(rowsView(groupLogits, g, 1), [n, dims.vocab]) : logits;
    const last = part(s.last, g);
    if (s.llmInt8 && s.headLlmInt8() && n <= maxLlmInt8Rows && plainInt8(w.output)) {
      const x = llmInt8Rows(r, last, s.llmInt8.hidden, {
        norm: { weight: w.norm, eps },
        threshold: s.llmInt8.threshold,
      });
      matvecLlmInt8(r, x, w.output, out);
    } else if (n <= maxMatvecTokens && w.output.kind === "int8" && dims.hidden % 4 === 0) {
      rmsNormLinear(r, last, w.norm, eps, w.output, out);
    } else {
      const normed = part(s.lastNormed, g);
      rmsNorm(r, last, w.norm, normed, eps);
      linear(r, normed, w.output, out); // weight-only: see llmInt8Gemm's note
    }
  });
  if (groupLogits) joinRowGroups(r, groupLogits, groups[0][1], logits);
}
