import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import type { AttentionFullShape } from "./attention_full.ts";
import { queryRowsHold, queryRowsMaxHeadDim, queryRowsPerWorkgroup } from "./query_rows.ts";

/**
 * attentionFull's result in the form a CPU adapter runs fast (kernels/attention_full_rows.wgsl: rows held in
 * registers, keys streamed, no workgroup memory): the vision encoder takes it on fallback adapters such as
 * Mesa's llvmpipe, where it ran 5× faster; on a GPU attentionFull's tiles are the fast form.
 * q, k, v, out: [B·T, H·Dh] f32 (heads contiguous inside a token row, as the qkv split leaves them).
 */
export function attentionFullRows(
  r: Recorder,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  shape: AttentionFullShape,
): void {
  const { batch: B, tokens: T, numHeads: H, headDim: Dh } = shape;
  if (!queryRowsHold(Dh)) {
    throw new Error(
      `attentionFullRows: head dim ${Dh} is not supported; it must be a multiple of 4 up to ${queryRowsMaxHeadDim}`,
    );
  }
  for (const [name, t] of [["q", q], ["k", k], ["v", v], ["out", out]] as const) {
    expectTensor(`attentionFullRows ${name}`, t, "f32", [B * T, H * Dh]);
  }
  r.dispatch("attention_full_rows", {
    bindings: [q, k, v, out],
    params: [T, H, Dh, f32(1 / Math.sqrt(Dh))],
    workgroups: [Math.ceil(T / queryRowsPerWorkgroup), H, B],
    constants: { D4: Dh / 4 },
    label: `attention_full_rows ${out.label}`,
  });
}
