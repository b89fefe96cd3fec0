// CPU reference of kernels/fill_random.wgsl: the same words for the same seed, computed one by one.
import { fillKey, mix32 } from "../ops/fill_random.ts";

const f = Math.fround;

function uniformF32(h: number, lo: number, hi: number): number {
  return f(f(lo) + f(f(f(hi) - f(lo)) * f((h >>> 8) / 16777216)));
}

/** f32 → bf16 bits with round to nearest even, as the kernel does. */
export function bf16Bits(v: number): number {
  const b = new Uint32Array(new Float32Array([v]).buffer)[0];
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 0) >>> 16;
}

type FillDtype = "i8x4" | "f32" | "bf16x2" | "i32";
type FillOpts = { seed: number; lo?: number; hi?: number };

/** Word `w` of a tensor whose rows hold `rowElems` logical elements (dtype as in Tensor). */
export function fillRandomWord(dtype: FillDtype, w: number, rowElems: number, opts: FillOpts): number {
  const per = dtype === "i8x4" ? 4 : dtype === "bf16x2" ? 2 : 1;
  const wordsPerRow = Math.ceil(rowElems / per);
  const key = fillKey(opts.seed);
  const lo = opts.lo ?? (dtype === "i32" ? 0 : -1), hi = opts.hi ?? (dtype === "i32" ? 2 ** 31 - 1 : 1);
  const valid = Math.min(rowElems - Math.min((w % wordsPerRow) * per, rowElems), 4);
  const h = mix32((w ^ key) >>> 0);
  if (dtype === "i8x4") {
    let word = 0;
    for (let j = 0; j < valid; j++) {
      const b = ((h >>> (8 * j)) & 0xff) - 128;
      const v = b === -128 ? 0 : b;
      word |= (v & 0xff) << (8 * j);
    }
    return word >>> 0;
  }
  if (dtype === "f32") return new Uint32Array(new Float32Array([uniformF32(h, lo, hi)]).buffer)[0];
  if (dtype === "bf16x2") {
    let word = 0;
    for (let j = 0; j < Math.min(valid, 2); j++) {
      word |= bf16Bits(uniformF32(mix32(((2 * w + j) ^ key) >>> 0), lo, hi)) << (16 * j);
    }
    return word >>> 0;
  }
  return (lo + (h % Math.min(hi - lo, 2 ** 32 - 1))) >>> 0;
}

/** All words of a [rows, rowElems] tensor, as the kernel writes them. */
export function fillRandomRef(dtype: FillDtype, rows: number, rowElems: number, opts: FillOpts): Uint32Array {
  const per = dtype === "i8x4" ? 4 : dtype === "bf16x2" ? 2 : 1;
  const out = new Uint32Array(rows * Math.ceil(rowElems / per));
  for (let w = 0; w < out.length; w++) out[w] = fillRandomWord(dtype, w, rowElems, opts);
  return out;
}
