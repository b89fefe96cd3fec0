import { median } from "./gpu_timer.ts";

/** `x` to `digits` significant digits for the JSON (null for NaN/∞, which JSON cannot hold). */
export function sig(x: number, digits = 4): number | null {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : null;
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
