import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

export interface AttentionFullShape {
  batch: number; // B independent tiles (images × dynamic tiles)
  tokens: number; // T tokens per tile (1025 for a 448 px tile: CLS + 32×32 patches)
  numHeads: number; // H
  headDim: number; // Dh (multiple of 4, ≤ 128)
}

/** Tiling of kernels/attention_full.wgsl (its override constants BQ and PREFETCH). */
export interface AttentionFullConfig {
  /** Query rows per workgroup (2 × that many threads). */
  queryTile: 32 | 64;
  /** Load the next Q/K/V stage into registers while the current one computes. */
  prefetch: boolean;
}

export const attentionFullConfigs: readonly AttentionFullConfig[] = [
  { queryTile: 64, prefetch: true },
  { queryTile: 64, prefetch: false },
  { queryTile: 32, prefetch: true },
  { queryTile: 32, prefetch: false },
];

/**
 * The tiling the model uses: 64 query rows per workgroup halve the Q re-reads per key. Chosen by
 * scripts/bench_attention.ts on an H100 (2026-11-26): 64 rows without prefetch 0.915 / 5.26 ms per call at
 * 1 / 7 tiles (14.7 / 17.9 TFLOP/s), with prefetch 1.035 / 6.03, 32 rows ≥ 1.66 / 10.7; the old kernel
 * 4.47 / 30.0 (bench/results/2026-11-26-h100-attention-full.log).
 */
export const defaultAttentionFullConfig: AttentionFullConfig = { queryTile: 64, prefetch: false };

/**
 * InternViT attention without mask: out = softmax((q·Dh^-0.5)·kᵀ)·v per tile and head.
 * q, k, v, out: [B·T, H·Dh] f32 (heads contiguous inside a token row, as the qkv split leaves them).
 */
export function attentionFull(
  r: Recorder,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  shape: AttentionFullShape,
  config: AttentionFullConfig = defaultAttentionFullConfig,
): void {
  const { batch: B, tokens: T, numHeads: H, headDim: Dh } = shape;
  if (Dh % 4 !== 0 || Dh > 128 || Dh < 4) {
    throw new Error(`attentionFull: head dim ${Dh} is not supported; it must be a multiple of 4 up to 128`);
  }
  for (const [name, t] of [["q", q], ["k", k], ["v", v], ["out", out]] as const) {
    expectTensor(`attentionFull ${name}`, t, "f32", [B * T, H * Dh]);
  }
  r.dispatch("attention_full", {
    bindings: [q, k, v, out],
    params: [T, H, Dh, f32(1 / Math.sqrt(Dh))],
    workgroups: [Math.ceil(T / config.queryTile), H, B],
    constants: { D4: Dh / 4, BQ: config.queryTile, PREFETCH: config.prefetch ? 1 : 0 },
    label: `attention_full ${out.label}`,
  });
}
