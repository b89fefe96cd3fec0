import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { combineKeySplits } from "./attention_causal.ts";
import { expectKvCaches, kvKernel } from "./kv_cache_storage.ts";
import type { PromptAttentionShape } from "./prompt_attention_shape.ts";

export interface AttentionPrefillShape extends PromptAttentionShape {
  /**
   * Partial rows for split keys (`attentionPrefillScratchFloats` floats): where the tiles alone are fewer than
   * prefillSplitTarget workgroups (a few new tokens over a kept conversation) the keys are split (PERF.md v70).
   * Without it every tile walks all its keys.
   */
  scratch?: Tensor;
  /** Force split keys into this many splits (tests: 1 too, through the partial rows); else `attentionPrefillSplits`. */
  splits?: number;
}

/** Tiling of kernels/attention_prefill.wgsl (its override constants BQ, PREFETCH and heads_per_tile). */
export interface AttentionPrefillConfig {
  /** Query rows per workgroup (2 × that many threads). */
  queryTile: 32 | 64;
  /**
   * "head": a tile's rows are consecutive tokens of one query head; "group": rows enumerate (token, head)
   * over the G = H/Hkv query heads of one kv head, so each K/V block is staged once for the whole group.
   */
  rows: "head" | "group";
  /** Load the next Q/K/V stage into registers while the current one computes. */
  prefetch: boolean;
}

export const attentionPrefillConfigs: readonly AttentionPrefillConfig[] = [
  { queryTile: 64, rows: "group", prefetch: false },
  { queryTile: 64, rows: "group", prefetch: true },
  { queryTile: 64, rows: "head", prefetch: false },
  { queryTile: 64, rows: "head", prefetch: true },
  { queryTile: 32, rows: "group", prefetch: false },
  { queryTile: 32, rows: "group", prefetch: true },
  { queryTile: 32, rows: "head", prefetch: false },
  { queryTile: 32, rows: "head", prefetch: true },
];

/**
 * The tiling the model uses: 64 rows of (token, head) over a kv group, no prefetch. scripts/
 * bench_attention_prefill.ts on an H100 (2026-11-26, bench/results/2026-11-26-h100-attention-prefill.log):
 * 2.01 ms a layer at T = 1800 (19.8 TFLOP/s; 97 ms per 48-layer prompt), one head's rows 2.19, 32-row
 * tiles ≥ 4.3; attention_causal 11.9 ms (570 ms per prompt).
 */
export const defaultAttentionPrefillConfig: AttentionPrefillConfig = {
  queryTile: 64,
  rows: "group",
  prefetch: false,
};

/**
 * Chunks with fewer new tokens keep attentionCausal: a 64-row tile of a short chunk would leave most of the
 * GPU idle where attention_causal's 16-row tiles and split-K spread the work.
 */
export const minPrefillTokens = 32;

/** Workgroups the split keys aim for, and the fewest keys a split keeps (two key blocks). */
export const prefillSplitTarget = 264;
const minKeysPerSplit = 64;
const keyBlock = 32; // BK of kernels/flash_tile.wgsl: a split's chunk is whole blocks

/**
 * The kernel's query tiles without split keys: [heads (or kv groups) a tile's rows cover, tiles along the
 * tokens, batch], and the heads one tile holds.
 */
function prefillTiles(
  shape: PromptAttentionShape,
  config: AttentionPrefillConfig,
): { grid: [number, number, number]; headsPerTile: number } {
  const { batch: B, tokens: T, numHeads: H, numKvHeads: Hkv } = shape;
  const headsPerTile = config.rows === "group" ? H / Hkv : 1;
  return { grid: [H / headsPerTile, Math.ceil((T * headsPerTile) / config.queryTile), B], headsPerTile };
}

/**
 * Key splits for a prompt pass: 0 (no partial rows) while the tiles alone are prefillSplitTarget workgroups or
 * more (a prompt of its own); else enough to reach it, each split keeping at least minKeysPerSplit keys — and
 * at least 1, so that every pass of a kept prompt scratch (whose tiles are few) records the same dispatches.
 */
export function attentionPrefillSplits(
  shape: PromptAttentionShape,
  config: AttentionPrefillConfig = defaultAttentionPrefillConfig,
): number {
  const { tokens: T, startPos } = shape;
  const [heads, along, B] = prefillTiles(shape, config).grid;
  const tiles = heads * along * B;
  if (tiles >= prefillSplitTarget) return 0;
  return Math.max(
    1,
    Math.min(Math.ceil(prefillSplitTarget / tiles), Math.floor((startPos + T) / minKeysPerSplit)),
  );
}

/**
 * Floats of partial rows enough for any pass `attentionPrefillSplits` gives splits: splits · B·T·H rows of
 * Dh + 2, where B·T·H ≤ 64 · tiles and splits ≤ target / tiles + 1 with tiles < target, so under 2 · target ·
 * 64 rows.
 */
export function attentionPrefillScratchFloats(headDim: number): number {
  return 2 * prefillSplitTarget * 64 * (headDim + 2);
}

/**
 * Causal GQA attention of B·T new queries over the KV cache (REFERENCE §7), the prompt-pass kernel.
 * q, out: [B·T, H·Dh] f32; kCache, vCache: [B, S, Hkv·Dh] f32 or bf16x2 (already holding the new keys/values);
 * keyValid: [B, S] i32, 1 = real token, 0 = left padding. Query t of sample b sees cache positions
 * 0 … startPos+t with keyValid 1; rows that see none come out as zeros. Same result as attentionCausal.
 */
export function attentionPrefill(
  r: Recorder,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionPrefillShape,
  config: AttentionPrefillConfig = defaultAttentionPrefillConfig,
): void {
  const { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh } = shape;
  const S = expectPrefillOperands("attentionPrefill", q, kCache, vCache, keyValid, out, shape, 128);
  const { grid, headsPerTile } = prefillTiles(shape, config);
  const rows = B * T * H;
  const { scratch } = shape;
  if (scratch) expectTensor("attentionPrefill scratch", scratch, "f32", [-1]);
  const wanted = shape.splits ?? (scratch ? attentionPrefillSplits(shape, config) : 0);
  const partials = wanted > 0;
  const kvLen = startPos + T;
  const chunk = Math.ceil(kvLen / Math.max(1, wanted) / keyBlock) * keyBlock;
  const splits = Math.ceil(kvLen / chunk);
  if (partials && !(scratch && scratch.numel >= splits * rows * (Dh + 2))) {
    throw new Error(
      `attentionPrefill: ${splits} key splits need a scratch of ${splits}×${rows}×${Dh + 2} floats` +
        (scratch ? `, got ${scratch.numel}` : ""),
    );
  }
  r.dispatch(kvKernel("attention_prefill", kCache), {
    bindings: [q, kCache, vCache, keyValid, out, partials ? scratch! : out],
    params: [
      T,
      H,
      Hkv,
      Dh,
      S,
      startPos,
      headsPerTile,
      f32(1 / Math.sqrt(Dh)),
      chunk,
      splits,
      partials ? 1 : 0,
    ],
    workgroups: [grid[0], grid[1], grid[2] * splits],
    constants: { D4: Dh / 4, BQ: config.queryTile, PREFETCH: config.prefetch ? 1 : 0 },
    label: `attention_prefill ${out.label}`,
  });
  if (partials) combineKeySplits(r, scratch!, out, rows, Dh, splits);
}

/**
 * Throws unless the operands fit `shape` (head dim a multiple of 4 up to maxHeadDim, query heads in whole kv
 * groups, the queries inside the cache); returns the cache length S. Shared by attentionPrefill and
 * attentionPrefillRows (src/ops/attention_prefill_rows.ts).
 */
export function expectPrefillOperands(
  what: string,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionPrefillShape,
  maxHeadDim: number,
): number {
  const { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh } = shape;
  if (Dh % 4 !== 0 || Dh > maxHeadDim || Dh < 4) {
    throw new Error(
      `${what}: head dim ${Dh} is not supported; it must be a multiple of 4 up to ${maxHeadDim}`,
    );
  }
  if (!(H > 0 && Hkv > 0 && H % Hkv === 0)) {
    throw new Error(`${what}: ${H} query heads do not split into ${Hkv} kv groups`);
  }
  const S = kCache.shape[1];
  expectTensor(`${what} q`, q, "f32", [B * T, H * Dh]);
  expectKvCaches(what, kCache, vCache, [B, S, Hkv * Dh]);
  expectTensor(`${what} keyValid`, keyValid, "i32", [B, S]);
  expectTensor(`${what} out`, out, "f32", [B * T, H * Dh]);
  if (!Number.isInteger(T) || T < 1 || !Number.isInteger(startPos) || startPos < 0 || startPos + T > S) {
    throw new Error(`${what}: queries at ${startPos}…${startPos + T - 1} lie outside a cache of ${S}`);
  }
  return S;
}
