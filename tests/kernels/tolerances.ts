/**
 * One table of kernel tolerances (f32 math on both sides; differences come from summation order,
 * WGSL's exp/erf approximations and fused multiply-adds).
 * - `nerr`: normalised error Σ(a−b)²/Σb² for reductions and matmuls;
 * - `atol`/`rtol`: |a−b| ≤ atol + rtol·|b| for elementwise ops.
 */
export const tolerance = {
  // Pure data movement (gathers, copies, bf16 → f32): bit-exact.
  exact: { atol: 0, rtol: 0 },
  elementwise: { atol: 1e-6, rtol: 1e-6 },
  transcendental: { atol: 1e-5, rtol: 1e-5 },
  // GELU with the kernel's own erf (absolute error ~1e-7) against an f64 erf; rtol covers f32 rounding.
  erfGelu: { atol: 1e-7, rtol: 1e-6 },
  reduction: { nerr: 1e-10 },
  matmul: { nerr: 1e-10 },
  attention: { nerr: 1e-10 },
  // Probabilities: WGSL exp may be off by a few ulp plus |x|·ulp from its argument (logits up to ~60
  // below the max), hence rtol; atol only covers results that underflow to ~0.
  softmax: { atol: 1e-12, rtol: 1e-5 },
} as const;
