import type { HostLinear } from "../ops/linear.ts";

/**
 * CPU reference of `linear`: out[t, n] = Σ_k x[t, k]·W[n, k] + bias[n], accumulated in f64.
 * Int8 weights are dequantized exactly like bitsandbytes in f32: W = fround(fround(CB·SCB) / 127).
 * x: [T, K] f32 → [T, N] f32.
 */
export function linearRef(x: Float32Array, T: number, w: HostLinear): Float32Array {
  const N = w.outFeatures, K = w.inFeatures;
  const W = dequantize(w);
  const out = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x[t * K + k] * W[n * K + k];
      out[t * N + n] = acc + (w.bias ? w.bias[n] : 0);
    }
  }
  return out;
}

/** [N, K] f32 weights as the model sees them. */
export function dequantize(w: HostLinear): Float32Array {
  if (w.kind === "float") return Float32Array.from(w.weight);
  const K = w.inFeatures, scb = w.scb!;
  const W = new Float32Array(w.weight.length);
  for (let i = 0; i < W.length; i++) {
    W[i] = Math.fround(Math.fround(w.weight[i] * scb[Math.floor(i / K)]) / 127);
  }
  return W;
}
