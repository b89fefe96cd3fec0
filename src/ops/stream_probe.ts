import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

// Experiment (kernels/stream_read_probe.wgsl, kernels/matvec_row_probe.wgsl, scripts/bench_stream_chain.ts,
// PERF.md v52), not used by the model: a plain read of a product's bytes, and the one-row int8 product with
// knobs, to tell where the products' time goes beyond their bytes.

/**
 * Reads the first `words` 16-byte words of `w` (any tensor; all of it by default) with `workgroups`
 * 256-thread workgroups, U loads a thread in flight. `sink` ([≥1] u32) is written only when a thread's XOR
 * of its words equals `magic`: give each dispatch its own sink to let dispatches overlap, one shared sink to
 * order them.
 */
export function recordStreamRead(
  r: Recorder,
  w: Tensor,
  sink: Tensor,
  opts: { workgroups: number; U?: 1 | 2 | 4; words?: number; magic?: number },
): void {
  const words = opts.words ?? Math.floor(w.byteLength / 16);
  if (!(Number.isInteger(words) && words >= 1 && words * 16 <= w.byteLength)) {
    throw new Error(
      `stream_read_probe ${w.label}: ${words} words of 16 bytes do not fit ${w.byteLength} bytes`,
    );
  }
  if (!(sink.dtype === "u32" && sink.numel >= 1)) {
    throw new Error(`stream_read_probe: sink ${sink.describe()}`);
  }
  r.dispatch("stream_read_probe", {
    bindings: [w, sink],
    params: [words, opts.magic ?? 0x9e3779b9],
    workgroups: Math.max(1, Math.min(opts.workgroups, Math.ceil(words / 256))),
    constants: { U: opts.U ?? 1 },
    label: `stream_read_probe ${w.label}`,
  });
}

/** The knobs of kernels/matvec_row_probe.wgsl (its header says what each asks). */
export interface RowProbeVariant {
  UW: 2 | 4 | 8;
  LANES: 32 | 64 | 128;
  ACC?: 1 | 2 | 4;
  PIPE?: boolean;
  /** 0 the product; timing only: 1 no x loads, 2 no int8 widening, 3 the weight loads alone. */
  MATH?: 0 | 1 | 2 | 3;
  /** Two rows a lane sharing each x load (UW is then 4 a row). */
  R2?: boolean;
  /** The weights block-major in blocks of a round (`blockRowMajor`). */
  BLOCKED?: boolean;
}

export function rowProbeName(v: RowProbeVariant): string {
  return `L${v.LANES} UW${v.R2 ? "4×2 rows" : v.UW}` + (v.ACC && v.ACC > 1 ? ` ACC${v.ACC}` : "") +
    (v.PIPE ? " PIPE" : "") + (v.BLOCKED ? " blocked" : "") +
    ["", " no x loads", " no widening", " loads only"][v.MATH ?? 0];
}

/**
 * Whether the probe takes variant `v` at K: BLOCKED needs whole blocks a row (K/4 a multiple of UW·LANES), and
 * no PIPE or R2.
 */
export function rowProbeTakes(v: RowProbeVariant, K: number): boolean {
  return !v.BLOCKED || (!v.PIPE && !v.R2 && (K / 4) % (v.UW * v.LANES) === 0);
}

/** out (+)= scale · W·x at one token. x: [1, K] f32 (K % 4 == 0), w: [N, K] i8x4, scale, out: [N] / [1, N] f32. */
export function recordMatvecRowProbe(
  r: Recorder,
  x: Tensor,
  w: Tensor,
  scale: Tensor,
  out: Tensor,
  v: RowProbeVariant,
  accumulate = false,
): void {
  const [N, K] = w.shape;
  expectTensor("matvec_row_probe weight", w, "i8x4", [N, K]);
  expectTensor("matvec_row_probe x", x, "f32", [1, K]);
  expectTensor("matvec_row_probe scale", scale, "f32", [N]);
  expectTensor("matvec_row_probe out", out, "f32", [1, N]);
  if (K % 4 !== 0) throw new Error(`matvec_row_probe: K = ${K} is not a multiple of 4`);
  if (v.PIPE && v.UW === 2) throw new Error("matvec_row_probe: PIPE takes UW 4 or 8");
  if (!rowProbeTakes(v, K)) {
    throw new Error(`matvec_row_probe: BLOCKED takes K/4 a multiple of ${v.UW * v.LANES}, no PIPE or R2`);
  }
  const rows = (v.R2 ? 512 : 256) / v.LANES;
  const { workgroups, groupsPerRow } = flatGrid(Math.ceil(N / rows), 1);
  r.dispatch("matvec_row_probe", {
    bindings: [x, w, scale, out],
    params: [N, K / 4, groupsPerRow],
    workgroups,
    constants: {
      UW: v.R2 ? 4 : v.UW,
      LANES: v.LANES,
      ACC: v.ACC ?? 1,
      PIPE: v.PIPE ? 1 : 0,
      MATH: v.MATH ?? 0,
      R2: v.R2 ? 1 : 0,
      ACCUM: accumulate ? 1 : 0,
      BLOCKED: v.BLOCKED ? 1 : 0,
    },
    label: `matvec_row_probe ${w.label}`,
  });
}

/**
 * Row-major int8 words [N, K/4] in BLOCKED's order: block b (words b·W … b·W + W − 1) of row n moves to words
 * (b·N + n)·W, W = UW·LANES words a block.
 */
export function blockRowMajor(words: Uint32Array, N: number, W: number): Uint32Array {
  const kw = words.length / N;
  if (kw % W !== 0) throw new Error(`blockRowMajor: ${kw} words a row is not a multiple of ${W}`);
  const out = new Uint32Array(words.length);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kw / W; b++) {
      out.set(words.subarray(n * kw + b * W, n * kw + (b + 1) * W), (b * N + n) * W);
    }
  }
  return out;
}
