import assert from "node:assert/strict";
import { Gpu } from "../../src/gpu/device.ts";

let shared: Promise<Gpu> | null = null;

/** One device for all kernel tests in a file run (creating devices is slow on llvmpipe). */
export function testGpu(): Promise<Gpu> {
  if (!shared) {
    shared = Gpu.create();
    // Tearing down a live device at process exit sometimes crashes Mesa's llvmpipe; destroy it first.
    shared.then((gpu) => globalThis.addEventListener("unload", () => gpu.destroy()));
  }
  return shared;
}

/**
 * "" when a and b hold the same values (Object.is: −0 differs from 0, NaN equals NaN), else the first place
 * they differ, named by `name`.
 */
export function firstDifference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  name = (i: number) => `value ${i}`,
): string {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `${name(i)}: ${a[i]} vs ${b[i]}`;
  return "";
}

/** Normalised error Σ(a−b)²/Σb²; fails when above `max`. */
export function assertNormalisedError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  max: number,
  /** What was checked, for the message. */
  what = "",
): void {
  assert.equal(actual.length, expected.length, "length");
  let num = 0, den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
  }
  const err = num / Math.max(den, 1e-30);
  assert.ok(
    Number.isFinite(err) && err <= max,
    `${what ? `${what}: ` : ""}normalised error ${err.toExponential(3)} > ${max}`,
  );
}

/** |a−b| ≤ atol + rtol·|b| everywhere; reports the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): void {
  assert.equal(actual.length, expected.length, "length");
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  assert.ok(worst < 0, `element ${worst}: got ${actual[worst]}, expected ${expected[worst]}`);
}
