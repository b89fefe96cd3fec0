/**
 * Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, bit-exact (Pillow 9.4, libImaging/Resample.c:
 * ImagingResample → ImagingResampleInner with the 8 bpc horizontal and vertical passes).
 * Written from the algorithm's description, not from Pillow's source:
 *  - separable: horizontal pass into a temporary image, then vertical pass; a pass is skipped when that
 *    axis keeps its size (the whole image is always the box, so no sub-box shifting is needed);
 *  - cubic convolution kernel with a = -0.5 and support 2, widened by the downscale factor;
 *  - per output pixel the weights are normalised to sum 1 in double, then turned into fixed point with
 *    PRECISION_BITS = 32 - 8 - 2 = 22 (round half away from zero);
 *  - accumulation starts at the rounding bias 1 << 21 and the result is clipped to 0..255 after each pass.
 */
import { newRgbImage, type RgbImage } from "./rgb_image.ts";

const PRECISION_BITS = 32 - 8 - 2;
const BICUBIC_SUPPORT = 2.0;

function bicubicKernel(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Fixed-point filter taps for one axis: output i reads `count[i]` inputs from `first[i]`. */
interface AxisCoefficients {
  /** Taps per output (the stride of `weights`). */
  ksize: number;
  /** first: [outSize] i32, index of the first input sample used. */
  first: Int32Array;
  /** count: [outSize] i32, number of input samples used. */
  count: Int32Array;
  /** weights: [outSize, ksize] i32, Q22 fixed point. */
  weights: Int32Array;
}

/** The resampling taps for mapping `inSize` samples onto `outSize` (box = the whole axis). */
export function axisCoefficients(inSize: number, outSize: number): AxisCoefficients {
  const scale = inSize / outSize;
  // Downscaling widens the kernel so that every input sample contributes (antialiasing).
  const filterScale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const taps = new Float64Array(ksize);
  const invFilterScale = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // Pillow rounds with a C cast: (int)(v + 0.5) truncates toward zero, then clamps.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicKernel((x + xmin - center + 0.5) * invFilterScale);
      taps[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? taps[x] / sum : taps[x];
      // (int)(±0.5 + w · 2^22): round half away from zero, then truncate toward zero.
      weights[i * ksize + x] = w < 0
        ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS))
        : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { ksize, first, count, weights };
}

// The accumulator is an int32 in Pillow; with these kernels |sum| < 2^31, so doubles hold it exactly and
// `>>` (arithmetic shift = floor division by 2^22) matches the C code.
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * The horizontal pass for rows y0 … y1−1: src [H, W] → out [H, outWidth] (out.width is the target width).
 * Rows are independent, so bands of them can run on different threads (src/image/image_workers.ts).
 */
export function horizontalRows(
  src: RgbImage,
  out: RgbImage,
  y0 = 0,
  y1 = src.height,
  coefficients = axisCoefficients(src.width, out.width),
): void {
  const { ksize, first, count, weights } = coefficients;
  const outWidth = out.width;
  const s = src.data;
  const o = out.data;
  const bias = 1 << (PRECISION_BITS - 1);
  for (let y = y0; y < y1; y++) {
    const rowIn = y * src.width * 3;
    const rowOut = y * outWidth * 3;
    for (let x = 0; x < outWidth; x++) {
      let r = bias, g = bias, b = bias;
      const k0 = x * ksize;
      let p = rowIn + first[x] * 3;
      for (let t = 0; t < count[x]; t++, p += 3) {
        const w = weights[k0 + t];
        r += s[p] * w;
        g += s[p + 1] * w;
        b += s[p + 2] * w;
      }
      const q = rowOut + x * 3;
      o[q] = clip8(r);
      o[q + 1] = clip8(g);
      o[q + 2] = clip8(b);
    }
  }
}

/**
 * The vertical pass for output rows y0 … y1−1: src [H, W] → out [outHeight, W] (out.height is the target
 * height). Each output row reads only source rows, so bands of output rows can run on different threads.
 */
export function verticalRows(
  src: RgbImage,
  out: RgbImage,
  y0 = 0,
  y1 = out.height,
  coefficients = axisCoefficients(src.height, out.height),
): void {
  const { ksize, first, count, weights } = coefficients;
  const s = src.data;
  const o = out.data;
  const rowBytes = src.width * 3;
  const bias = 1 << (PRECISION_BITS - 1);
  const acc = new Float64Array(rowBytes);
  for (let y = y0; y < y1; y++) {
    // Row-at-a-time accumulation: same sums as Pillow's per-pixel loop (integer adds, any order).
    acc.fill(bias);
    const k0 = y * ksize;
    for (let t = 0; t < count[y]; t++) {
      const w = weights[k0 + t];
      const rowIn = (first[y] + t) * rowBytes;
      for (let i = 0; i < rowBytes; i++) acc[i] += s[rowIn + i] * w;
    }
    const rowOut = y * rowBytes;
    for (let i = 0; i < rowBytes; i++) o[rowOut + i] = clip8(acc[i]);
  }
}

/** Checks a resize target the way Pillow's resize needs it. */
export function checkResizeTarget(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`Resize target must be positive integers, got ${width}×${height}`);
  }
}

/**
 * Resizes `img` to `width` × `height` exactly as Pillow 9.4 `img.resize((width, height), BICUBIC)` does
 * for an RGB image. Returns a copy when the size is unchanged (Pillow does too).
 */
export function bicubicResize(img: RgbImage, width: number, height: number): RgbImage {
  checkResizeTarget(width, height);
  let out = img;
  if (width !== img.width) {
    const next = newRgbImage(width, out.height);
    horizontalRows(out, next);
    out = next;
  }
  if (height !== img.height) {
    const next = newRgbImage(out.width, height);
    verticalRows(out, next);
    out = next;
  }
  return out === img ? { width, height, data: img.data.slice() } : out;
}
