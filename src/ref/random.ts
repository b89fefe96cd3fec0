/** Seeded pseudo-random numbers for tests and benchmarks (mulberry32): same seed, same inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform floats in [lo, hi). */
export function randomF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Uniform int8 values in [-127, 127] (the range bitsandbytes produces). */
export function randomI8(n: number, seed: number): Int8Array {
  const r = rng(seed);
  const out = new Int8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 255) - 127;
  return out;
}
