/**
 * CPU reference of kernels/pixel_shuffle.wgsl, written as the reference's view/permute sequence
 * (x[:, 1:] viewed [N, P(w), P(h), C] → view [N, w, h/2, 2C] → permute → view [N, h/2, w/2, 4C] →
 * permute back (v2)), so it checks the closed-form index map of the kernel independently.
 * x: [N, 1 + P·P, C] → [N, (P/2)², 4C].
 */
export function pixelShuffleRef(x: Float32Array, N: number, P: number, C: number): Float32Array {
  const h2 = P / 2;
  const out = new Float32Array(N * h2 * h2 * 4 * C);
  for (let n = 0; n < N; n++) {
    // Step 1: y1[w][j][e] = x[w][2j + e/C][e%C]   ([P, P/2, 2C], the first view)
    // Step 2: permute → y2[j][w][e] = y1[w][j][e]   ([P/2, P, 2C])
    // Step 3: view → y3[j][i][f] = y2[j][2i + f/(2C)][f%(2C)]   ([P/2, P/2, 4C])
    // Step 4: v2 permute → y4[i][j][f] = y3[j][i][f]
    for (let i = 0; i < h2; i++) {
      for (let j = 0; j < h2; j++) {
        for (let f = 0; f < 4 * C; f++) {
          const w = 2 * i + Math.floor(f / (2 * C)); // y3 → y2 → y1 row
          const e = f % (2 * C);
          const col = 2 * j + Math.floor(e / C);
          out[((n * h2 + i) * h2 + j) * 4 * C + f] = x[(n * (1 + P * P) + 1 + w * P + col) * C + (e % C)];
        }
      }
    }
  }
  return out;
}
