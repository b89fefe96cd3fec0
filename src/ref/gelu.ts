/**
 * erf in f64 from the everywhere-convergent series erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (2n+1)!!
 * (all terms positive, so no cancellation; ~1e-15 relative). |x| ≥ 6 returns ±1 (erfc(6) ≈ 2e-17).
 */
export function erfRef(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  let term = a, sum = a;
  for (let n = 1; term > 1e-17 * sum; n++) {
    term *= 2 * a * a / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

/** CPU reference of kernels/gelu.wgsl: 0.5 · x · (1 + erf(x / √2)) in f64. */
export function geluRef(x: Float32Array): Float32Array {
  return x.map((v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2)));
}
