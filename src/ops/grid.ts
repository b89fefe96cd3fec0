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

/**
 * Persistent workgroups for `blocks` row blocks when `want` are asked for: 0 (one workgroup per block) if
 * that is not fewer than the blocks, and never so few that one walks more than 1024 blocks — Mesa's
 * llvmpipe silently stopped a workgroup after ~6550 blocks of a persistent linear_matvec (measured in
 * commit e6fd5a8; the model's shapes need at most a dozen per workgroup).
 */
export function persistentGroups(blocks: number, want: number | undefined): number {
  if (!want || want <= 0 || want >= blocks) return 0;
  return Math.max(want, Math.ceil(blocks / 1024));
}
