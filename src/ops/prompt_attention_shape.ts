/**
 * The queries and heads of a prompt-pass attention (attentionCausal, attentionPrefill, attentionPrefillRows):
 * B sequences' T new queries at cache positions startPos … startPos+T−1, grouped-query heads.
 */
export interface PromptAttentionShape {
  batch: number; // B sequences (left-padded to one length)
  tokens: number; // T new queries per sequence, at cache positions startPos … startPos+T−1
  startPos: number;
  numHeads: number; // H query heads
  numKvHeads: number; // Hkv (H % Hkv == 0)
  headDim: number; // Dh (multiple of 4, ≤ 128)
}
