/** CPU reference of kernels/residual_add.wgsl: out = x + scale ⊙ y (scale per column, optional). */
export function residualAddRef(
  x: Float32Array,
  y: Float32Array,
  scale: Float32Array | null,
  d: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i] + (scale ? scale[i % d] : 1) * y[i]);
  return out;
}
