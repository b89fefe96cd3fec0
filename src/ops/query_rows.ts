/**
 * The limits of kernels/query_rows.wgsl, the query rows the CPU adapters' attentions hold in registers
 * (attention_full_rows.wgsl, attention_prefill_rows.wgsl): 8 rows an invocation, 8 invocations a workgroup,
 * each row's q and output in 16 vec4 (llvmpipe's compile time grows fast with them: ~1 s at Dh 32, 7 s at 64,
 * 38 s at 128).
 */

/** Query rows one workgroup covers (8 invocations × 8 rows). */
export const queryRowsPerWorkgroup = 64;

/** The largest head dim the rows hold. */
export const queryRowsMaxHeadDim = 64;

/** Whether the rows hold head dim Dh (a multiple of 4 up to queryRowsMaxHeadDim). */
export const queryRowsHold = (Dh: number): boolean => Dh % 4 === 0 && Dh >= 4 && Dh <= queryRowsMaxHeadDim;
