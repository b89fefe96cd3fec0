import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type AttentionPrefillShape, expectPrefillOperands } from "./attention_prefill.ts";
import { kvKernel } from "./kv_cache_storage.ts";
import { queryRowsMaxHeadDim, queryRowsPerWorkgroup } from "./query_rows.ts";

/**
 * attentionPrefill's result (and attentionCausal's) in the form a CPU adapter runs fast
 * (kernels/attention_prefill_rows.wgsl: each invocation's 8 tokens held in registers, keys streamed, no
 * workgroup memory): prompt passes take it on fallback adapters such as Mesa's llvmpipe.
 * q, out: [B·T, H·Dh] f32; kCache, vCache: [B, S, Hkv·Dh] f32 or bf16x2 (already holding the new keys/values);
 * keyValid: [B, S] i32, 1 = real token, 0 = left padding.
 */
export function attentionPrefillRows(
  r: Recorder,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  keyValid: Tensor,
  out: Tensor,
  shape: AttentionPrefillShape,
): void {
  const { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh } = shape;
  const S = expectPrefillOperands(
    "attentionPrefillRows",
    q,
    kCache,
    vCache,
    keyValid,
    out,
    shape,
    queryRowsMaxHeadDim,
  );
  r.dispatch(kvKernel("attention_prefill_rows", kCache), {
    bindings: [q, kCache, vCache, keyValid, out],
    params: [T, H, Hkv, Dh, S, startPos, 1, f32(1 / Math.sqrt(Dh))],
    workgroups: [Math.ceil(T / queryRowsPerWorkgroup), H, B],
    constants: { D4: Dh / 4 },
    label: `attention_prefill_rows ${out.label}`,
  });
}
