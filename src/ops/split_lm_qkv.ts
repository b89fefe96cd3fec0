import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

export interface LmHeads {
  numHeads: number; // H query heads
  numKvHeads: number; // Hkv key/value heads (H % Hkv == 0)
  headDim: number; // Dh
}

/**
 * Splits InternLM2's interleaved wqkv output: per kv group h, slots 0..G−1 are query heads h·G+g,
 * slot G the key and slot G+1 the value (G = H/Hkv; REFERENCE §7).
 * qkv: [T, Hkv·(G+2)·Dh] f32 → q: [T, H·Dh], k, v: [T, Hkv·Dh] f32.
 */
export function splitLmQkv(r: Recorder, qkv: Tensor, q: Tensor, k: Tensor, v: Tensor, heads: LmHeads): void {
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = heads;
  if (!(H > 0 && Hkv > 0 && H % Hkv === 0)) {
    throw new Error(`splitLmQkv: ${H} query heads do not split into ${Hkv} kv groups`);
  }
  const G = H / Hkv;
  const T = qkv.shape[0];
  expectTensor("splitLmQkv qkv", qkv, "f32", [T, Hkv * (G + 2) * Dh]);
  expectTensor("splitLmQkv q", q, "f32", [T, H * Dh]);
  expectTensor("splitLmQkv k", k, "f32", [T, Hkv * Dh]);
  expectTensor("splitLmQkv v", v, "f32", [T, Hkv * Dh]);
  const n = T * Hkv * (G + 2) * Dh;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("split_lm_qkv", {
    bindings: [qkv, q, k, v],
    params: [n, Dh, G, Hkv, groupsPerRow],
    workgroups,
    label: `split_lm_qkv ${qkv.label}`,
  });
}
