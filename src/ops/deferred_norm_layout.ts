/**
 * A deferred RMSNorm: the kernel that produces the hidden state h [T, D] (linear_matvec with NORM_NEXT)
 * also writes what the next RMSNorm needs, and the int8 matrix-vector kernel after it
 * (kernels/deferred_norm_matvec.wgsl) only applies rsqrt(mean h² + eps) after its reduction. Row t of the
 * tensor [T, deferredNormWidth(D)] holds h[t, ·]·g in columns 0..D−1, then one Σ h[t, ·]² per producer
 * workgroup of 8 rows, padded to a multiple of 4 so every row stays 16-byte aligned.
 */

/** Rows of h per producer workgroup (ROWS in kernels/linear_matvec.wgsl). */
const producerRows = 8;

/** Partial sums of squares per row: one per producer workgroup, rounded up to a multiple of 4. */
export function deferredNormParts(D: number): number {
  return 4 * Math.ceil(Math.ceil(D / producerRows) / 4);
}

/** How many of the partial-sum columns the producer writes (the rest stay unread). */
export function deferredNormUsedParts(D: number): number {
  return Math.ceil(D / producerRows);
}

/** Row width of a deferred-norm tensor for hidden size D. */
export function deferredNormWidth(D: number): number {
  return D + deferredNormParts(D);
}
