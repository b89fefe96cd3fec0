import type { SamplingOptions } from "../ops/sample_token.ts";

/** PCG-RXS-M-XS hash on u32, as in kernels/sample_token.wgsl. */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The kernel's uniform draw in (0, 1) for (seed, step, row, token). */
export function sampleUniform(seed: number, step: number, row: number, token: number): number {
  const rowHash = pcgHash((row + pcgHash((step + pcgHash(seed)) >>> 0)) >>> 0);
  return ((pcgHash((token + rowHash) >>> 0) >>> 8) + 0.5) / 16777216;
}

/**
 * CPU reference of kernels/sample_token.wgsl, done the textbook way (sorting) rather than by the kernel's
 * threshold search: temperature → top-k (ties with the k-th kept) → top-p (smallest most-likely set with
 * mass ≥ top_p, ties with its last token kept) → Gumbel-max with the same counter-based draws.
 * logits: [B, V] → ids [B].
 */
export function sampleTokenRef(logits: Float32Array, B: number, V: number, o: SamplingOptions): Int32Array {
  const inv = Math.fround(1 / o.temperature);
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const s = Float32Array.from(logits.subarray(b * V, (b + 1) * V), (x) => Math.fround(x * inv));
    const order = [...s.keys()].sort((i, j) => s[j] - s[i]);
    let threshold = -Infinity;
    if (o.topK > 0 && o.topK < V) threshold = s[order[o.topK - 1]];
    if (o.topP < 1) {
      const m = s[order[0]];
      let z = 0;
      for (const i of order) if (s[i] >= threshold) z += Math.exp(s[i] - m);
      let mass = 0;
      for (const i of order) {
        mass += Math.exp(s[i] - m) / z;
        if (mass >= o.topP) {
          threshold = Math.max(threshold, s[i]);
          break;
        }
      }
    }
    let best = -Infinity, bestI = -1;
    for (let i = 0; i < V; i++) {
      if (!(s[i] >= threshold)) continue;
      const score = s[i] - Math.log(-Math.log(sampleUniform(o.seed, o.step, b, i)));
      if (bestI < 0 || score > best) [best, bestI] = [score, i];
    }
    out[b] = bestI;
  }
  return out;
}
