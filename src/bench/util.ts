/** `x` to `digits` significant digits for the JSON (null for NaN/∞, which JSON cannot hold). */
export function sig(x: number, digits = 4): number | null {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : null;
}
