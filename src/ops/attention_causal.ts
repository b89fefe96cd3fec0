import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { expectKvCaches, kvKernel } from "./kv_cache_storage.ts";
import { flatGrid } from "./grid.ts";
import type { PromptAttentionShape } from "./prompt_attention_shape.ts";

export interface AttentionCausalShape extends PromptAttentionShape {
  /**
   * Scratch from `createAttentionScratch` for split-K (flash-decoding). Without it every query tile is one
   * workgroup, which leaves most of a big GPU idle when decoding (T = 1): pass it on the decode path.
   */
  scratch?: Tensor;
  /** Force the number of key splits (tests, benchmarks); by default chosen from the grid size. */
  splits?: number;
}

/** Query rows ((token, group member) pairs) and keys per workgroup tile in kernels/attention_causal.wgsl. */
const queryTile = 16;
const keyTile = 32;
/**
 * Workgroups worth filling the GPU with (an H100 has 132 SMs); split-K stops once the grid has this many.
 * Only short chunks split (8 new tokens after a kept 1842-token conversation: 264 workgroups of ~170 keys
 * took 175 µs a layer on an H100, bench v5); 8 per SM leaves each a couple of 32-key tiles.
 */
const targetWorkgroups = 1056;
/** Fewest keys one split handles, so the combine pass stays cheap next to the attention itself. */
const minKeysPerSplit = 2 * keyTile;

/**
 * Scratch for `attentionCausal`'s split-K partial rows: [maxSplits, B·T·H, Dh+2] f32. Size it for the
 * decode step (T = 1); a prefill with a larger grid needs no splits.
 */
export function createAttentionScratch(
  gpu: Gpu,
  label: string,
  shape: { batch: number; tokens?: number; numHeads: number; headDim: number; maxSplits?: number },
): Tensor {
  const rows = shape.batch * (shape.tokens ?? 1) * shape.numHeads;
  return gpu.createTensor(label, "f32", [shape.maxSplits ?? 64, rows, shape.headDim + 2]);
}

/**
 * Causal GQA attention of B·T new queries over the KV cache (REFERENCE §7).
 * q, out: [B·T, H·Dh] f32; kCache, vCache: [B, S, Hkv·Dh] f32 or bf16x2 (already holding the new keys/values);
 * keyValid: [B, S] i32, 1 = real token, 0 = left padding. Query t of sample b sees cache positions
 * 0 … startPos+t with keyValid 1; rows that see none come out as zeros.
 */
export function attentionCausal(
  r: Recorder,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionCausalShape,
): void {
  const { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh } = shape;
  if (Dh % 4 !== 0 || Dh > 128 || Dh < 4) {
    throw new Error(`attentionCausal: head dim ${Dh} is not supported; it must be a multiple of 4 up to 128`);
  }
  if (!(H > 0 && Hkv > 0 && H % Hkv === 0)) {
    throw new Error(`attentionCausal: ${H} query heads do not split into ${Hkv} kv groups`);
  }
  const S = kCache.shape[1];
  expectTensor("attentionCausal q", q, "f32", [B * T, H * Dh]);
  expectKvCaches("attentionCausal", kCache, vCache, [B, S, Hkv * Dh]);
  expectTensor("attentionCausal keyValid", keyValid, "i32", [B, S]);
  expectTensor("attentionCausal out", out, "f32", [B * T, H * Dh]);
  if (!Number.isInteger(startPos) || startPos < 0 || startPos + T > S) {
    throw new Error(
      `attentionCausal: queries at ${startPos}…${startPos + T - 1} lie outside a cache of ${S}`,
    );
  }
  const G = H / Hkv;
  const rows = B * T * H;
  const kvLen = startPos + T;
  const baseGroups = Math.ceil((T * G) / queryTile) * Hkv * B;

  if (shape.scratch && shape.scratch.dtype !== "f32") {
    throw new Error(`attentionCausal scratch: expected f32, got ${shape.scratch.describe()}`);
  }
  // Split the keys only while the grid is too small to fill the GPU (decode, short prompts).
  const capacity = shape.scratch ? Math.floor(shape.scratch.numel / (rows * (Dh + 2))) : 1;
  if (shape.splits !== undefined && shape.splits > capacity) {
    throw new Error(
      `attentionCausal: ${shape.splits} splits need a scratch of ${shape.splits}×${rows}×${Dh + 2}`,
    );
  }
  const wanted = shape.splits ??
    Math.min(Math.ceil(targetWorkgroups / baseGroups), Math.ceil(kvLen / minKeysPerSplit));
  let splits = Math.max(1, Math.min(wanted, capacity));
  const chunk = Math.ceil(kvLen / splits / keyTile) * keyTile;
  splits = Math.ceil(kvLen / chunk);

  r.dispatch(kvKernel("attention_causal", kCache), {
    bindings: [q, kCache, vCache, keyValid, out, splits > 1 ? shape.scratch! : out],
    params: [B, T, H, Hkv, Dh, S, startPos, chunk, splits, f32(1 / Math.sqrt(Dh))],
    workgroups: [Math.ceil((T * G) / queryTile), Hkv * splits, B],
    label: `attention_causal ${out.label}`,
  });
  if (splits > 1) combineKeySplits(r, shape.scratch!, out, rows, Dh, splits);
}

/**
 * The second pass of split-K attention (kernels/attention_causal_combine.wgsl): merges the first `splits`
 * blocks of partial rows [splits, rows, Dh+2] (o unnormalised, m, l) into out [rows·Dh].
 */
export function combineKeySplits(
  r: Recorder,
  partial: Tensor,
  out: Tensor,
  rows: number,
  Dh: number,
  splits: number,
): void {
  const n = rows * Dh;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("attention_causal_combine", {
    bindings: [partial, out],
    params: [n, Dh, splits, rows, groupsPerRow],
    workgroups,
    label: `attention_causal_combine ${out.label}`,
  });
}
