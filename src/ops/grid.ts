/**
 * A 1-D launch of `n` threads in workgroups of `size`, folded into a 2-D grid because one grid
 * dimension holds at most 65535 workgroups. Kernels recompute the flat index as
 * `(wg.y * groupsPerRow + wg.x) * size + local_index` and bound-check it.
 */
export function flatGrid(n: number, size = 256): { workgroups: [number, number]; groupsPerRow: number } {
  const groups = Math.max(1, Math.ceil(n / size));
  const groupsPerRow = Math.min(groups, 65535);
  return { workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)], groupsPerRow };
}
