// What the shapes alone say a forward pass must move and compute (docs/PERF.md starts from these numbers):
// a decode step streams every LLM weight once plus the KV cache of every sequence, so at batch 1 its time
// is bounded below by bytes / copy bandwidth.
import type { LanguageDims, VisionDims } from "../model/dims.ts";

/** int8 weight bytes (+ f32 scales) of one InternLM2 layer's Linears. */
export function lmLayerLinearBytes(d: LanguageDims): { int8: number; scales: number; params: number } {
  const { hidden: D, heads: H, kvHeads: Hkv, headDim: Dh, intermediate: I } = d;
  const shapes: [number, number][] = [[(H + 2 * Hkv) * Dh, D], [D, H * Dh], [I, D], [I, D], [D, I]];
  const params = shapes.reduce((s, [n, k]) => s + n * k, 0);
  return { int8: params, scales: 4 * shapes.reduce((s, [n]) => s + n, 0), params };
}

export interface DecodeCost {
  /** Bytes of int8 weights + scales read once per step (layers + head; norms ignored: < 0.01 %). */
  weightBytes: number;
  /** Bytes of K and V read per step at this context, for all B sequences (f32 cache). */
  kvBytes: number;
  /** Multiply-adds ×2 of the Linears and the attention, per step, all B sequences. */
  flops: number;
  /** weightBytes + kvBytes + the embedding rows. */
  totalBytes: number;
}

/** One decode step of B sequences whose caches hold `context` positions. kvBytesPerValue: 4 for f32. */
export function decodeCost(d: LanguageDims, context: number, batch = 1, kvBytesPerValue = 4): DecodeCost {
  const layer = lmLayerLinearBytes(d);
  const head = d.vocab * d.hidden;
  const weightBytes = d.layers * (layer.int8 + layer.scales) + head + 4 * d.vocab;
  const kvBytes = batch * d.layers * 2 * context * d.kvHeads * d.headDim * kvBytesPerValue;
  const linearFlops = 2 * batch * (d.layers * layer.params + head);
  const attnFlops = batch * d.layers * 4 * d.heads * d.headDim * context;
  return {
    weightBytes,
    kvBytes,
    flops: linearFlops + attnFlops,
    totalBytes: weightBytes + kvBytes + batch * d.hidden * 2,
  };
}

/** FLOPs of a prefill of T tokens (Linears + causal attention; the head runs on the last row only). */
export function prefillFlops(d: LanguageDims, T: number): number {
  const layer = lmLayerLinearBytes(d);
  return 2 * T * d.layers * layer.params + d.layers * 4 * d.heads * d.headDim * (T * (T + 1) / 2) +
    2 * d.vocab * d.hidden;
}

/** FLOPs of the ViT over N tiles (Linears + full attention), projector excluded. */
export function vitFlops(v: VisionDims, tiles: number): number {
  const T = v.patchesPerSide ** 2 + 1;
  const params = v.layers * (4 * v.hidden * v.hidden + 2 * v.hidden * v.intermediate);
  return 2 * tiles * T * params + tiles * v.layers * 4 * v.heads * v.headDim * T * T;
}

/** Int8 bytes of all ViT Linears. */
export function vitWeightBytes(v: VisionDims): number {
  return v.layers * (4 * v.hidden * v.hidden + 2 * v.hidden * v.intermediate);
}
