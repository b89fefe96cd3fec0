import type { Recorder } from "../gpu/recorder.ts";
import { f32 } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementsPerWord } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

export interface FillRandomOptions {
  seed: number;
  /** f32 / bf16x2: uniform in [lo, hi); i32: integers in [lo, hi). Ignored for i8x4 (always −127..127). */
  lo?: number;
  hi?: number;
}

/** mix (Chris Wellons' lowbias32), shared with kernels/fill_random.wgsl and src/ref/fill_random.ts. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The per-tensor key the kernel xors into every word index. */
export function fillKey(seed: number): number {
  return mix32((seed ^ 0x9e3779b9) >>> 0);
}

const modes = { i8x4: 0, f32: 1, bf16x2: 2, i32: 3 } as const;

/**
 * Fills `t` with seeded pseudo-random values on the GPU (kernels/fill_random.wgsl): i8x4 → int8 in
 * −127..127, f32/bf16x2 → uniform [lo, hi), i32 → integers [lo, hi). Packed rows keep their padding zero.
 * Any tensor a Gpu can create fits one dispatch (≤ 2 GiB binding → ≤ 2²⁹ words).
 */
export function fillRandom(r: Recorder, t: Tensor, opts: FillRandomOptions): void {
  if (!(t.dtype in modes)) {
    throw new Error(`fillRandom: ${t.describe()} has no random fill (${Object.keys(modes)})`);
  }
  const mode = modes[t.dtype as keyof typeof modes];
  const lo = opts.lo ?? (mode === 3 ? 0 : -1), hi = opts.hi ?? (mode === 3 ? 2 ** 31 - 1 : 1);
  if (!(hi > lo)) throw new Error(`fillRandom ${t.label}: empty range [${lo}, ${hi})`);
  if (mode === 3 && !(Number.isInteger(lo) && Number.isInteger(hi) && hi - lo <= 2 ** 32)) {
    throw new Error(`fillRandom ${t.label}: i32 range [${lo}, ${hi}) must be integers spanning at most 2³²`);
  }
  const rowElems = t.shape.length ? t.shape[t.shape.length - 1] : 1;
  const wordsPerRow = Math.max(1, Math.ceil(rowElems / elementsPerWord(t.dtype)));
  const n = t.byteLength / 4;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("fill_random", {
    bindings: [t],
    params: [
      n,
      mode,
      fillKey(opts.seed),
      groupsPerRow,
      f32(mode === 3 ? 0 : lo),
      f32(mode === 3 ? 0 : hi),
      mode === 3 ? lo : 0,
      // ispan as u32: 2³² itself wraps to 0, which the kernel would divide by; cap at 2³² − 1.
      mode === 3 ? Math.min(hi - lo, 2 ** 32 - 1) : 1,
      wordsPerRow,
      rowElems,
    ],
    workgroups,
    label: `fill_random ${t.label}`,
  });
}
