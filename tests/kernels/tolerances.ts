/**
 * One table of kernel tolerances (f32 math on both sides; differences come from summation order,
 * WGSL's exp/erf approximations and fused multiply-adds).
 * - `nerr`: normalised error Σ(a−b)²/Σb² for reductions and matmuls;
 * - `atol`/`rtol`: |a−b| ≤ atol + rtol·|b| for elementwise ops.
 */
export const tolerance = {
  elementwise: { atol: 1e-6, rtol: 1e-6 },
  transcendental: { atol: 1e-5, rtol: 1e-5 },
  reduction: { nerr: 1e-10 },
  matmul: { nerr: 1e-10 },
  attention: { nerr: 1e-10 },
} as const;
