/**
 * Coefficient planes → RGB8 rows y0 … y1−1: dequantisation and inverse DCT, chroma upsampling and colour
 * conversion, exactly as libjpeg-turbo's defaults (what Pillow's `convert('RGB')` gets):
 *   - jidctint.c `jpeg_idct_islow` (JDCT_ISLOW: CONST_BITS 13, PASS1_BITS 2, output through the
 *     IDCT range-limit table, i.e. (x + 128) wrapped to 10 bits and clamped);
 *   - jdsample.c "fancy" upsampling: `h2v1_fancy_upsample`, `h1v2_fancy_upsample`, `h2v2_fancy_upsample`
 *     (triangle filters with their rounding biases), plain replication (`h2v1_upsample`, `h2v2_upsample`,
 *     `int_upsample`) otherwise or where the component is at most 2 samples wide (jinit_upsampler);
 *     the vertical context rows at the image top and bottom repeat the edge row (jdmainct.c
 *     make_funny_pointers / set_bottom_pointers);
 *   - jdcolor.c `ycc_rgb_convert` with its integer tables (SCALEBITS 16), or a copy for RGB/gray.
 * It is a pure function of (frame, planes, y0, y1) writing only rows y0 … y1−1 of `out`, so any band can
 * run on any thread (src/image/image_worker.ts) and the bytes do not depend on how rows are split.
 */
import type { CoefficientPlanes } from "./jpeg_entropy.ts";
import type { JpegComponent, JpegFrame } from "./jpeg_markers.ts";

const CONST_BITS = 13, PASS1_BITS = 2;
const FIX_0_298631336 = 2446, FIX_0_390180644 = 3196, FIX_0_541196100 = 4433, FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373, FIX_1_175875602 = 9633, FIX_1_501321110 = 12299, FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069, FIX_2_053119869 = 16819, FIX_2_562915447 = 20995, FIX_3_072711026 = 25172;

/** jdmaster.c prepare_range_limit_table as the IDCT indexes it: [1024] u8 at (x & 1023), x descaled. */
const IDCT_LIMIT = new Uint8Array(1024);
for (let i = 0; i < 1024; i++) IDCT_LIMIT[i] = i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;

/** jdcolor.c build_ycc_rgb_table: [256] each, indexed by the Cb / Cr sample. */
const SCALEBITS = 16, ONE_HALF = 1 << (SCALEBITS - 1);
const fix = (x: number) => Math.floor(x * (1 << SCALEBITS) + 0.5);
const CR_R = new Int32Array(256),
  CB_B = new Int32Array(256),
  CR_G = new Int32Array(256),
  CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (fix(1.402) * x + ONE_HALF) >> SCALEBITS;
  CB_B[i] = (fix(1.772) * x + ONE_HALF) >> SCALEBITS;
  CR_G[i] = -fix(0.71414) * x;
  CB_G[i] = -fix(0.34414) * x + ONE_HALF;
}
/** jdmaster.c sample_range_limit: clamp to 0 … 255 of v at [v + 384] (the colour sums stay in −384 … 639). */
const LIMIT = new Uint8Array(1024);
for (let i = 0; i < 1024; i++) LIMIT[i] = Math.min(255, Math.max(0, i - 384));

/** jpeg_idct_islow of one block: coefs [64] (natural order) × quant [64] → 8×8 samples at out[at + y·stride + x]. */
function idctBlock(
  coefs: Int16Array,
  base: number,
  quant: Int32Array,
  ws: Int32Array,
  out: Uint8Array,
  at: number,
  stride: number,
): void {
  // Pass 1: columns, into ws with PASS1_BITS of extra precision.
  for (let col = 0; col < 8; col++) {
    const c = base + col;
    if (
      (coefs[c + 8] | coefs[c + 16] | coefs[c + 24] | coefs[c + 32] | coefs[c + 40] | coefs[c + 48] |
        coefs[c + 56]) === 0
    ) {
      const dc = Math.imul(coefs[c], quant[col]) << PASS1_BITS;
      for (let k = 0; k < 64; k += 8) ws[col + k] = dc;
      continue;
    }
    let z2 = Math.imul(coefs[c + 16], quant[col + 16]), z3 = Math.imul(coefs[c + 48], quant[col + 48]);
    let z1 = Math.imul(z2 + z3, FIX_0_541196100);
    let tmp2 = z1 - Math.imul(z3, FIX_1_847759065);
    let tmp3 = z1 + Math.imul(z2, FIX_0_765366865);
    z2 = Math.imul(coefs[c], quant[col]);
    z3 = Math.imul(coefs[c + 32], quant[col + 32]);
    let tmp0 = (z2 + z3) << CONST_BITS;
    let tmp1 = (z2 - z3) << CONST_BITS;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    tmp0 = Math.imul(coefs[c + 56], quant[col + 56]);
    tmp1 = Math.imul(coefs[c + 40], quant[col + 40]);
    tmp2 = Math.imul(coefs[c + 24], quant[col + 24]);
    tmp3 = Math.imul(coefs[c + 8], quant[col + 8]);
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = Math.imul(z3 + z4, FIX_1_175875602);
    tmp0 = Math.imul(tmp0, FIX_0_298631336);
    tmp1 = Math.imul(tmp1, FIX_2_053119869);
    tmp2 = Math.imul(tmp2, FIX_3_072711026);
    tmp3 = Math.imul(tmp3, FIX_1_501321110);
    z1 = Math.imul(z1, -FIX_0_899976223);
    z2 = Math.imul(z2, -FIX_2_562915447);
    z3 = Math.imul(z3, -FIX_1_961570560) + z5;
    z4 = Math.imul(z4, -FIX_0_390180644) + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    const r = 1 << (CONST_BITS - PASS1_BITS - 1), s = CONST_BITS - PASS1_BITS;
    ws[col] = (tmp10 + tmp3 + r) >> s;
    ws[col + 56] = (tmp10 - tmp3 + r) >> s;
    ws[col + 8] = (tmp11 + tmp2 + r) >> s;
    ws[col + 48] = (tmp11 - tmp2 + r) >> s;
    ws[col + 16] = (tmp12 + tmp1 + r) >> s;
    ws[col + 40] = (tmp12 - tmp1 + r) >> s;
    ws[col + 24] = (tmp13 + tmp0 + r) >> s;
    ws[col + 32] = (tmp13 - tmp0 + r) >> s;
  }
  // Pass 2: rows, descaled by PASS1_BITS + 3 more and range-limited.
  const r = 1 << (CONST_BITS + PASS1_BITS + 3 - 1), s = CONST_BITS + PASS1_BITS + 3;
  for (let row = 0; row < 64; row += 8, at += stride) {
    if (
      (ws[row + 1] | ws[row + 2] | ws[row + 3] | ws[row + 4] | ws[row + 5] | ws[row + 6] | ws[row + 7]) === 0
    ) {
      const v = IDCT_LIMIT[((ws[row] + (1 << (PASS1_BITS + 2))) >> (PASS1_BITS + 3)) & 1023];
      for (let x = 0; x < 8; x++) out[at + x] = v;
      continue;
    }
    let z2 = ws[row + 2], z3 = ws[row + 6];
    let z1 = Math.imul(z2 + z3, FIX_0_541196100);
    let tmp2 = z1 - Math.imul(z3, FIX_1_847759065);
    let tmp3 = z1 + Math.imul(z2, FIX_0_765366865);
    let tmp0 = (ws[row] + ws[row + 4]) << CONST_BITS;
    let tmp1 = (ws[row] - ws[row + 4]) << CONST_BITS;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    tmp0 = ws[row + 7];
    tmp1 = ws[row + 5];
    tmp2 = ws[row + 3];
    tmp3 = ws[row + 1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = Math.imul(z3 + z4, FIX_1_175875602);
    tmp0 = Math.imul(tmp0, FIX_0_298631336);
    tmp1 = Math.imul(tmp1, FIX_2_053119869);
    tmp2 = Math.imul(tmp2, FIX_3_072711026);
    tmp3 = Math.imul(tmp3, FIX_1_501321110);
    z1 = Math.imul(z1, -FIX_0_899976223);
    z2 = Math.imul(z2, -FIX_2_562915447);
    z3 = Math.imul(z3, -FIX_1_961570560) + z5;
    z4 = Math.imul(z4, -FIX_0_390180644) + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    out[at] = IDCT_LIMIT[((tmp10 + tmp3 + r) >> s) & 1023];
    out[at + 7] = IDCT_LIMIT[((tmp10 - tmp3 + r) >> s) & 1023];
    out[at + 1] = IDCT_LIMIT[((tmp11 + tmp2 + r) >> s) & 1023];
    out[at + 6] = IDCT_LIMIT[((tmp11 - tmp2 + r) >> s) & 1023];
    out[at + 2] = IDCT_LIMIT[((tmp12 + tmp1 + r) >> s) & 1023];
    out[at + 5] = IDCT_LIMIT[((tmp12 - tmp1 + r) >> s) & 1023];
    out[at + 3] = IDCT_LIMIT[((tmp13 + tmp0 + r) >> s) & 1023];
    out[at + 4] = IDCT_LIMIT[((tmp13 - tmp0 + r) >> s) & 1023];
  }
}

type Upsampling = "none" | "h2v1" | "h1v2" | "h2v2" | "replicate";

/** jdsample.c jinit_upsampler's choice (do_fancy_upsampling TRUE, full-size DCT). */
function upsamplingOf(c: JpegComponent, frame: JpegFrame): Upsampling {
  const hx = frame.hmax / c.h, vx = frame.vmax / c.v;
  if (hx === 1 && vx === 1) return "none";
  if (hx === 2 && vx === 1) return c.width > 2 ? "h2v1" : "replicate";
  if (hx === 1 && vx === 2) return "h1v2";
  if (hx === 2 && vx === 2) return c.width > 2 ? "h2v2" : "replicate";
  return "replicate";
}

/**
 * One component's samples at full resolution for output rows y0 … y1−1: rows [y1−y0, rowStride] u8 in `data`,
 * output row y at (y − y0)·rowStride (rowStride ≥ image width).
 */
interface FullRows {
  data: Uint8Array;
  rowStride: number;
}

/** Sample rows r0 … r1 of component `c` that output rows y0 … y1−1 read (context rows included). */
function sampleRows(frame: JpegFrame, c: JpegComponent, y0: number, y1: number): [number, number] {
  const mode = upsamplingOf(c, frame);
  const vx = frame.vmax / c.v;
  const r0 = Math.floor(y0 / vx), r1 = Math.floor((y1 - 1) / vx);
  // One context row above and below for the vertical triangle filters, the edge row at the image edges.
  if (mode === "h1v2" || mode === "h2v2") return [Math.max(r0 - 1, 0), Math.min(r1 + 1, c.height - 1)];
  return [r0, r1];
}

/** How many rows of MCUs must be entropy-decoded before output rows 0 … y1−1 can be reconstructed. */
export function mcuRowsNeeded(frame: JpegFrame, y1: number): number {
  let rows = 0;
  for (const c of frame.components) {
    const lastBlockRow = sampleRows(frame, c, 0, y1)[1] >> 3;
    rows = Math.max(rows, Math.floor(lastBlockRow / c.v) + 1);
  }
  return Math.min(rows, frame.mcusY);
}

function componentRows(frame: JpegFrame, ci: number, coefs: Int16Array, y0: number, y1: number): FullRows {
  const c = frame.components[ci];
  const mode = upsamplingOf(c, frame);
  const hx = frame.hmax / c.h, vx = frame.vmax / c.v;
  const [ra, rb] = sampleRows(frame, c, y0, y1);
  const by0 = ra >> 3, by1 = rb >> 3;
  const blocksX = Math.ceil(c.width / 8), stride = blocksX * 8;
  const samples = new Uint8Array((by1 - by0 + 1) * 8 * stride);
  const ws = new Int32Array(64);
  for (let by = by0; by <= by1; by++) {
    for (let bx = 0; bx < blocksX; bx++) {
      idctBlock(
        coefs,
        (by * c.blocksPerLine + bx) * 64,
        c.quant,
        ws,
        samples,
        ((by - by0) * 8) * stride + bx * 8,
        stride,
      );
    }
  }
  const rowAt = (r: number) => (r - by0 * 8) * stride;
  const rows = y1 - y0;
  if (mode === "none") {
    // The band's rows are already there: view them in place.
    return { data: samples.subarray(rowAt(y0)), rowStride: stride };
  }
  const w = c.width, outStride = w * hx;
  const out = new Uint8Array(rows * outStride);
  const last = c.height - 1;
  for (let y = y0; y < y1; y++) {
    const o = (y - y0) * outStride;
    const r = Math.floor(y / vx);
    const p0 = rowAt(r);
    if (mode === "h2v1") {
      // h2v1_fancy_upsample: 3/4 nearer + 1/4 further, biases 1 (left) and 2 (right); edges copy.
      let v = samples[p0];
      out[o] = v;
      out[o + 1] = (v * 3 + samples[p0 + 1] + 2) >> 2;
      for (let x = 1; x < w - 1; x++) {
        v = samples[p0 + x] * 3;
        out[o + 2 * x] = (v + samples[p0 + x - 1] + 1) >> 2;
        out[o + 2 * x + 1] = (v + samples[p0 + x + 1] + 2) >> 2;
      }
      v = samples[p0 + w - 1];
      out[o + 2 * w - 2] = (v * 3 + samples[p0 + w - 2] + 1) >> 2;
      out[o + 2 * w - 1] = v;
    } else if (mode === "h1v2" || mode === "h2v2") {
      // The nearer row is this one, the further the one above (even output row) or below (odd).
      const below = (y & 1) === 1;
      const p1 = rowAt(below ? Math.min(r + 1, last) : Math.max(r - 1, 0));
      if (mode === "h1v2") {
        const bias = below ? 2 : 1;
        for (let x = 0; x < w; x++) out[o + x] = (samples[p0 + x] * 3 + samples[p1 + x] + bias) >> 2;
      } else {
        // h2v2_fancy_upsample: column sums of 3·near + far, then 3/4·this + 1/4·neighbour, biases 8 and 7.
        let thisSum = samples[p0] * 3 + samples[p1];
        let nextSum = samples[p0 + 1] * 3 + samples[p1 + 1];
        out[o] = (thisSum * 4 + 8) >> 4;
        out[o + 1] = (thisSum * 3 + nextSum + 7) >> 4;
        let lastSum = thisSum;
        thisSum = nextSum;
        for (let x = 1; x < w - 1; x++) {
          nextSum = samples[p0 + x + 1] * 3 + samples[p1 + x + 1];
          out[o + 2 * x] = (thisSum * 3 + lastSum + 8) >> 4;
          out[o + 2 * x + 1] = (thisSum * 3 + nextSum + 7) >> 4;
          lastSum = thisSum;
          thisSum = nextSum;
        }
        out[o + 2 * w - 2] = (thisSum * 3 + lastSum + 8) >> 4;
        out[o + 2 * w - 1] = (thisSum * 4 + 7) >> 4;
      }
    } else {
      // int_upsample / h2v1_upsample / h2v2_upsample: each sample repeated hx times (rows vx times).
      for (let x = 0; x < w; x++) out.fill(samples[p0 + x], o + x * hx, o + x * hx + hx);
    }
  }
  return { data: out, rowStride: outStride };
}

/**
 * Writes RGB rows y0 … y1−1 of the image into out: [frame.height, frame.width, 3] u8 (other rows untouched).
 * planes: what src/image/jpeg_entropy.ts decoded.
 */
export function reconstructRows(
  frame: JpegFrame,
  planes: CoefficientPlanes,
  y0: number,
  y1: number,
  out: Uint8Array,
): void {
  if (y1 <= y0) return;
  const w = frame.width;
  const rows = frame.components.map((_, ci) => componentRows(frame, ci, planes[ci], y0, y1));
  for (let y = y0; y < y1; y++) {
    let o = y * w * 3;
    if (frame.colorSpace === "gray") {
      const { data, rowStride } = rows[0];
      const p = (y - y0) * rowStride;
      for (let x = 0; x < w; x++, o += 3) out[o] = out[o + 1] = out[o + 2] = data[p + x];
      continue;
    }
    const [a, b, c] = rows;
    const pa = (y - y0) * a.rowStride, pb = (y - y0) * b.rowStride, pc = (y - y0) * c.rowStride;
    const ya = a.data, cb = b.data, cr = c.data;
    if (frame.colorSpace === "rgb") {
      for (let x = 0; x < w; x++, o += 3) {
        out[o] = ya[pa + x];
        out[o + 1] = cb[pb + x];
        out[o + 2] = cr[pc + x];
      }
      continue;
    }
    for (let x = 0; x < w; x++, o += 3) {
      const yy = ya[pa + x], u = cb[pb + x], v = cr[pc + x];
      out[o] = LIMIT[yy + 384 + CR_R[v]];
      out[o + 1] = LIMIT[yy + 384 + ((CB_G[u] + CR_G[v]) >> SCALEBITS)];
      out[o + 2] = LIMIT[yy + 384 + CB_B[u]];
    }
  }
}
