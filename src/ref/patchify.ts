/** im2col as in kernels/patchify.wgsl. pixels: [N, 3, S, S] → [N, G², 3p²], col = c·p² + ky·p + kx. */
export function patchifyRef(pixels: Float32Array, N: number, S: number, p: number): Float32Array {
  const G = S / p, cols = 3 * p * p;
  const out = new Float32Array(N * G * G * cols);
  for (let n = 0; n < N; n++) {
    for (let gy = 0; gy < G; gy++) {
      for (let gx = 0; gx < G; gx++) {
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++) {
              out[((n * G + gy) * G + gx) * cols + (c * p + ky) * p + kx] =
                pixels[((n * 3 + c) * S + gy * p + ky) * S + gx * p + kx];
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * Direct Conv2d(3, D, p, stride p) + flatten(2).transpose(1, 2) in f64, independent of im2col.
 * pixels: [N, 3, S, S], weight: [D, 3, p, p], bias: [D] → [N, G², D] f32.
 */
export function patchConvRef(
  pixels: Float32Array,
  N: number,
  S: number,
  p: number,
  weight: Float32Array,
  bias: Float32Array,
  D: number,
): Float32Array {
  const G = S / p;
  const out = new Float32Array(N * G * G * D);
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < G; oy++) {
      for (let ox = 0; ox < G; ox++) {
        for (let d = 0; d < D; d++) {
          let acc = bias[d];
          for (let c = 0; c < 3; c++) {
            for (let ky = 0; ky < p; ky++) {
              for (let kx = 0; kx < p; kx++) {
                acc += weight[((d * 3 + c) * p + ky) * p + kx] *
                  pixels[((n * 3 + c) * S + oy * p + ky) * S + ox * p + kx];
              }
            }
          }
          out[((n * G + oy) * G + ox) * D + d] = acc;
        }
      }
    }
  }
  return out;
}
