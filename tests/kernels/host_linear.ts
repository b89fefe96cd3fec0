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
