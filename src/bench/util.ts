import { median } from "./gpu_timer.ts";

/** `x` to `digits` significant digits for the JSON (null for NaN/∞, which JSON cannot hold). */
export function sig(x: number, digits = 4): number | null {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : null;
}

/** The q-quantile of `xs` (the value at rank ⌊q·n⌋ of the sorted values; NaN for none). */
export function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN;
}

/** `x` rounded to hundredths (milliseconds for the JSON of wall-clock probes). */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The median wall time of `reps` runs of `f`, one after another (CPU work: no GPU completion poll in it). */
export async function medianWallMs(reps: number, f: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}
