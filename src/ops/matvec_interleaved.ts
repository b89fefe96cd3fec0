import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";

/**
 * Experiment (kernels/matvec_interleaved.wgsl, scripts/bench_matvec_interleaved.ts), not used by the model:
 * int8 weights [N, K] row-major → the interleaved layout, 16 int8 (one vec4<u32>) of row n at
 * k = 16b … 16b+15 at vec4 index b·N + n. K % 16 == 0.
 */
export function interleaveInt8Rows(w: Int8Array, N: number, K: number): Uint32Array {
  if (K % 16 !== 0 || w.length !== N * K) {
    throw new Error(`interleaveInt8Rows: need K % 16 == 0 and N·K values`);
  }
  const out = new Uint32Array(N * K / 4);
  const bytes = new Uint8Array(out.buffer);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < K / 16; b++) {
      for (let i = 0; i < 16; i++) bytes[(b * N + n) * 16 + i] = w[n * K + 16 * b + i] & 0xff;
    }
  }
  return out;
}

/**
 * out[t, n] (+)= scale[n] · Σ_k x[t, k]·W[n, k] with W interleaved (interleaveInt8Rows). x: [T, K] f32,
 * T ≤ 8; w: N·K bytes (any 4-byte dtype); scale: [N] f32; out: [T, N] f32. rowsPerLane 1 or 2.
 */
export function matvecInterleaved(
  r: Recorder,
  x: Tensor,
  w: Tensor,
  scale: Tensor,
  out: Tensor,
  opts: { accumulate?: boolean; rowsPerLane?: 1 | 2 } = {},
): void {
  const [T, K] = x.shape;
  const N = scale.shape[0];
  if (!(T >= 1 && T <= 8 && K % 16 === 0)) {
    throw new Error(`matvecInterleaved: needs 1 ≤ T ≤ 8 and K % 16 == 0 (T=${T}, K=${K})`);
  }
  expectTensor("matvecInterleaved out", out, "f32", [T, N]);
  if (w.byteLength !== N * K) {
    throw new Error(`matvecInterleaved: ${w.label} holds ${w.byteLength} bytes, not ${N}×${K}`);
  }
  const R = opts.rowsPerLane ?? 2;
  const groups = Math.ceil(N / (32 * R));
  const groupsPerRow = Math.min(groups, 65535);
  r.dispatch("matvec_interleaved", {
    bindings: [x, w, scale, out],
    params: [N, K / 16, groupsPerRow, opts.accumulate ? 1 : 0],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    constants: { TT: T, R },
    label: `matvec_interleaved ${w.label}`,
  });
}
