import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

export interface AttentionFullShape {
  batch: number; // B independent tiles (images × dynamic tiles)
  tokens: number; // T tokens per tile (1025 for a 448 px tile: CLS + 32×32 patches)
  numHeads: number; // H
  headDim: number; // Dh (multiple of 4, ≤ 128)
}

/** Query rows per workgroup in kernels/attention_full.wgsl. */
const queryTile = 16;

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
    workgroups: [Math.ceil(T / queryTile), H, B],
    label: `attention_full ${out.label}`,
  });
}
