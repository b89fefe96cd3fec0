/** CPU reference of kernels/kv_write.wgsl: a copy of cache [B, S, W] with kv [B·T, W] at rows startPos…. */
export function kvWriteRef(
  kv: Float32Array,
  cache: Float32Array,
  B: number,
  T: number,
  S: number,
  W: number,
  startPos: number,
): Float32Array {
  const out = cache.slice();
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      out.set(kv.subarray((b * T + t) * W, (b * T + t + 1) * W), (b * S + startPos + t) * W);
    }
  }
  return out;
}
