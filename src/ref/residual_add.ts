/** CPU reference of kernels/residual_add.wgsl: acc + scale ⊙ y (scale per column, optional). */
export function residualAddRef(
  acc: Float32Array,
  y: Float32Array,
  scale: Float32Array | null,
  d: number,
): Float32Array {
  const out = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) out[i] = Math.fround(acc[i] + (scale ? scale[i % d] : 1) * y[i]);
  return out;
}
