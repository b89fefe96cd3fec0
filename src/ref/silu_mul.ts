/** CPU reference of kernels/silu_mul.wgsl: gate / (1 + e^(−gate)) · up in f64. */
export function siluMulRef(gate: Float32Array, up: Float32Array): Float32Array {
  return gate.map((g, i) => g / (1 + Math.exp(-g)) * up[i]);
}
