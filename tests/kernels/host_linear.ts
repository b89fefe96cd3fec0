import type { HostLinear } from "../../src/ops/linear.ts";
import { randomF32, randomI8 } from "../../src/ref/random.ts";

/** A random int8 Linear [N, K], SCB in [0.02, 0.2) like real rows, with a bias when asked. */
export function hostInt8(N: number, K: number, withBias: boolean, seed: number): HostLinear {
  return {
    kind: "int8",
    weight: randomI8(N * K, seed),
    scb: randomF32(N, seed + 1, 0.02, 0.2),
    bias: withBias ? randomF32(N, seed + 2) : null,
    outFeatures: N,
    inFeatures: K,
  };
}

/** Values of random magnitudes (2^−30 … 2^30 times a uniform [−1, 1)): x where an inexact widening shows. */
export function spreadF32(n: number, seed: number): Float32Array {
  const u = randomF32(n, seed), e = randomF32(n, seed + 1, -30, 30);
  return u.map((v, i) => v * 2 ** Math.round(e[i]));
}
/** hostInt8 without a bias and with −128 (which bitsandbytes never writes, but a byte can hold) in places. */
export function int8WithMin(N: number, K: number, seed: number): HostLinear {
  const h = hostInt8(N, K, false, seed);
  for (let i = seed % 7; i < h.weight.length; i += 13) h.weight[i] = -128;
  return h;
}

/** The bits of each value (an exact comparison that tells −0 from 0 and compares NaNs). */
export function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}
