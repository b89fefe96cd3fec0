import type { HostLinear } from "../ops/linear.ts";

// CPU reference of bitsandbytes' LLM.int8 matrix multiply (MatMul8bitLt with threshold θ) as the kernels
// llm_int8_outliers, llm_int8_quantize and linear_dp4a compute it (src/ops/llm_int8.ts):
//   1. flag[c] = 1 if any row has |x[t, c]| ≥ θ;
//   2. sca[t] = max{|x[t, c]| : |x[t, c]| < θ} (0 if none);
//   3. q[t, c] = 0 for a flagged column, else round_half_even(x[t, c] · (127 / sca[t])) (f32 math);
//   4. out[t, n] = f32(Σ_k q·CB)·(sca[t]/127)·scale[n] + scale[n]·Σ_{c flagged} x[t, c]·CB[n, c] + bias[n].
// bitsandbytes (int8_vectorwise_quant, MatMul8bitLt) zeroes the outlier columns of the int8 activations
// (CA[:, idx] = 0) and multiplies them in 16-bit floats instead; here that part is exact-ish (f64 sums).

/** Steps 1–3: the outlier columns and the int8 rows. x: [T, K] f32. */
export interface LlmInt8Quantized {
  flags: Uint8Array; // [K] 1 = outlier column
  outliers: number[]; // the flagged columns, increasing
  sca: Float32Array; // [T] per-row absmax of the values below θ
  q: Int8Array; // [T, K] int8 activations, outlier columns 0
}

/** JavaScript's Math.round rounds halves up; the kernels (WGSL round) and torch.round round them to even. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function llmInt8QuantizeRef(
  x: Float32Array,
  T: number,
  K: number,
  threshold: number,
): LlmInt8Quantized {
  const flags = new Uint8Array(K);
  const sca = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let c = 0; c < K; c++) {
      const a = Math.abs(x[t * K + c]);
      if (a >= threshold) flags[c] = 1;
      else if (a > m) m = a;
    }
    sca[t] = m;
  }
  const outliers: number[] = [];
  for (let c = 0; c < K; c++) if (flags[c]) outliers.push(c);
  const q = new Int8Array(T * K);
  for (let t = 0; t < T; t++) {
    const inv = sca[t] > 0 ? Math.fround(127 / sca[t]) : 0;
    for (let c = 0; c < K; c++) {
      if (!flags[c]) q[t * K + c] = roundHalfEven(Math.fround(x[t * K + c] * inv));
    }
  }
  return { flags, outliers, sca, q };
}

/**
 * Step 4 from given int8 rows, row stats and outlier columns (the CPU's own or the GPU's): the int8 part
 * as an exact integer sum, the outlier part in f64. `prior`: out's previous contents (accumulate).
 * Returns [T, N] f32.
 */
export function llmInt8ProductRef(
  x: Float32Array,
  T: number,
  q: Int8Array, // [T, K]
  sca: Float32Array, // [T]
  outliers: readonly number[],
  w: HostLinear,
  prior: Float32Array | null = null,
): Float32Array {
  const N = w.outFeatures, K = w.inFeatures;
  if (w.kind !== "int8" || !w.scb) throw new Error("llmInt8ProductRef: needs int8 weights with SCB");
  const cb = w.weight as Int8Array;
  const out = new Float32Array(T * N);
  for (let n = 0; n < N; n++) {
    const scale = Math.fround(w.scb[n] / 127); // what uploadLinear stores
    for (let t = 0; t < T; t++) {
      let acc = 0; // |Σ| ≤ 127²·K: exact in a double
      for (let k = 0; k < K; k++) acc += q[t * K + k] * cb[n * K + k];
      let outlier = 0;
      for (const c of outliers) outlier += x[t * K + c] * cb[n * K + c];
      const rowScale = Math.fround(sca[t] / 127);
      out[t * N + n] = Math.fround(acc) * rowScale * scale + scale * outlier + (w.bias ? w.bias[n] : 0) +
        (prior ? prior[t * N + n] : 0);
    }
  }
  return out;
}

/** Steps 1–4. x: [T, K] f32, w: int8 [N, K] → { out: [T, N] f32, and the steps' intermediates }. */
export function llmInt8Ref(
  x: Float32Array,
  T: number,
  w: HostLinear,
  opts: { threshold?: number; prior?: Float32Array | null } = {},
): LlmInt8Quantized & { out: Float32Array } {
  const quantized = llmInt8QuantizeRef(x, T, w.inFeatures, opts.threshold ?? 6);
  const { q, sca, outliers } = quantized;
  return { ...quantized, out: llmInt8ProductRef(x, T, q, sca, outliers, w, opts.prior ?? null) };
}
