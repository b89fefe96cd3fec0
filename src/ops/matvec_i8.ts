import type { Recorder } from "../gpu/recorder.ts";
import { expectHalfSubnormals } from "../gpu/half_subnormals.ts";
import { f32 } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { persistentGroups } from "./grid.ts";
import { matvecOverride } from "./tiling_overrides.ts";

/**
 * Floats of kernels/matvec_i8_core.wgsl's reduction array a tiling needs at T tokens in the packed layout of
 * a shorter array (at least 256; the full array's layout fits every tiling).
 */
export function matvecReductionFloats(mode: MatvecMode, c: MatvecConfig, T: number): number {
  const slots = mode === "gateUp" || c.R > 4 ? 8 : c.R;
  return Math.max(256, (256 / c.LANES) * Math.min(T, 2) * slots * (c.LANES + 1));
}

/** Row blocks of an N-row product in tiling `c`: R rows a thread, 256/LANES row groups a workgroup. */
export function matvecRowBlocks(c: MatvecConfig, N: number): number {
  return Math.ceil(N / (c.R * (256 / c.LANES)));
}

/** The reduction array's full length (19.5 KiB of workgroup memory in all) and the shorter one (15 KiB). */
export const fullReductionFloats = 4608;
export const compactReductionFloats = 3584;
/** Multiprocessors of an H100 / H200, which the grids' sizes assume (as persistent workgroups' 264 do). */
const multiprocessors = 132;

/**
 * kernels/matvec_i8_core.wgsl's RED_LEN for a dispatch of `blocks` row blocks, one a workgroup (`persist`
 * 0), or persistent workgroups. The kernel's workgroup memory decides how many of its workgroups share a
 * multiprocessor. At the full length two do, and that spreads the one-token and persistent grids (256–264
 * workgroups) over the multiprocessors: at the length each tiling needs, the decode step took 7.11 → 8.38
 * ms (H200, PERF.md v95). But at two a multiprocessor the plain linears of 2–6 tokens (wo and w2: 384 blocks
 * of 16 rows) most likely ran in two waves; with the shorter array three share one, and the 384 fit at once.
 * H200, weight-only, alternating twice against the full array (PERF.md v95): batch 2 / 3 / 4 / 5 / 6 222.0 /
 * 251.3–269.6 / 328.2–328.6 / 354.7–354.9 / 367.4–367.6 → 241.0–241.3 / 285.1–285.4 / 341.7 / 369.6–369.7 /
 * 384.4–384.6 tokens/s, one row 7.033 / 7.036 ms a step. At 7 and 8 tokens it lost (batch 7 381.7–402.7 →
 * 332.5–333.0, batch 8 409.7 → 332.7), and 2560 floats or fewer gained less at 3–4 tokens.
 */
export function matvecReductionLength(
  mode: MatvecMode,
  c: MatvecConfig,
  T: number,
  blocks: number,
  persist: number,
): number {
  const threeAtOnce = blocks > 2 * multiprocessors && blocks <= 3 * multiprocessors;
  const fits = matvecReductionFloats(mode, c, T) <= compactReductionFloats;
  return mode === "linear" && persist === 0 && T >= 2 && T <= 6 && threeAtOnce && fits
    ? compactReductionFloats
    : fullReductionFloats;
}

/** kernels/matvec_i8.wgsl's MODE: plain linear, RMSNorm → linear, RMSNorm → W1, W3 → silu·up. */
export type MatvecMode = "linear" | "norm" | "gateUp";
const modeIds: Record<MatvecMode, number> = { linear: 0, norm: 1, gateUp: 2 };

/** Tiling of kernels/matvec_i8.wgsl: output rows per thread, threads per row along K, words in flight. */
export interface MatvecConfig {
  R: 1 | 2 | 4 | 8;
  LANES: 8 | 16 | 32 | 64 | 128 | 256;
  U: 1 | 2 | 4 | 8;
  /** Benchmarks only: the int→float conversion the kernel used before i8x4. */
  I2F?: boolean;
  /**
   * Benchmarks only, wrong results: 1 = token 0's x for every token's math, 2 = one token's math, 3 = no
   * weight loads.
   */
  probe?: 1 | 2 | 3;
  /** Benchmarks only: a dot product and an add per row and word instead of four chained multiply-adds. */
  dotAdd?: boolean;
  /**
   * 16-byte weight loads (K % 16 == 0; kernels/matvec_i8_vec.wgsl): a lane's unit is a chunk of four words;
   * U > 1 → two chunks in flight.
   */
  VEC?: boolean;
  /** Persistent workgroups walking the row blocks (the grid is then min(blocks, persist)); 0/absent: none. */
  persist?: number;
  /**
   * One token only; absent: at one token unless I2F, where the device keeps subnormal half floats
   * (Recorder.halfSubnormals). The weights widen to (b + 128)·2⁻²⁴ (kernels/int8.wgsl) and each word's
   * multiply-adds start from −I8_BIAS·Σx of the word, shared by the thread's rows: one addition a row and
   * word instead of four subtractions (not the exact sums' rounding; within tolerance.matmul of them).
   */
  biased?: boolean;
}

/**
 * gate/up with 16-byte weight loads, by token count, from one sweep on an H100
 * (bench/results/2026-11-27-h100-matvec-vec{,2,-t24,-gateup}.log, µs a call against the tiling before):
 * T = 1 78.4 (84.3), 2 83.3 (92.5), 4 98.4 (144.1); confirmed in the model at T = 1 and 4 (PERF.md v38, v39).
 * The sweep also favoured VEC at T = 3 and 5–8, but at T = 8 the model's gate/up took 208 µs a call with it
 * against 194 with R2 L16 U4 (v39), and which T a tiling suits is erratic there (R4 L16 U1: 83, 164, 98, 112
 * µs at T = 2…5; two chunks in flight 196 µs at T = 4), most likely the driver's register allocation. So each
 * was tried in the model (PERF.md v41, `deno task bench --batches 3,4,5,6,7,8`): batch 3 245.8 → 253.6, 5
 * 307.0 → 336.1, 7 350.6 → 357.5 tokens/s taken; batch 6 went 324.8 → 317.5 and 8 (v39) lost too. At 6–8
 * tokens 8 lanes a row without VEC then beat both (v48; see matvecConfig).
 */
const gateUpVec: Record<number, MatvecConfig> = {
  1: { R: 4, LANES: 16, U: 2, VEC: true },
  2: { R: 4, LANES: 16, U: 1, VEC: true },
  3: { R: 4, LANES: 16, U: 2, VEC: true, persist: 264 },
  4: { R: 4, LANES: 16, U: 1, VEC: true },
  5: { R: 4, LANES: 16, U: 1, VEC: true },
};

/**
 * The tiling per mode, token count and rows, chosen on an H100 by scripts/bench_matvec.ts (2026-11-26,
 * copy 2882 GB/s; tables in bench/results/2026-11-26-h100-matvec*.log). Four rows per thread share each x
 * load (T = 8: 2–3× the one-row kernels). `persist` = 264 workgroups (2 per SM of a 132-SM H100/H200) walk
 * the row blocks: gate/up 94.9 instead of 101.4 µs at T = 1, the LM head 83.8 % of copy instead of 80.8 %.
 * null where the one-row kernel stays faster (T = 1 plain linear: wo 67 %, w2 82 % of copy; T = 2 plain linear
 * with K ≤ 8192, in the model on an H200). Re-swept after the norm's sums went to all 256 threads
 * (bench/results/2026-11-26-h100-matvec-sweep-after-norms.log): gate/up at T = 4 now R4 L16 U2 (111.3 µs
 * against 113.6 persistent; T = 2, 3 not measured), the rest unchanged.
 */
export function matvecConfig(
  mode: MatvecMode,
  T: number,
  N: number,
  K: number,
  cpuAdapter = false,
): MatvecConfig | null {
  // A CPU adapter (Mesa's llvmpipe) runs the 256 threads as 32 vectors of 8 lanes, switching at every barrier
  // of the reduction: there the fewest lanes a row and one row a thread were fastest (a tiny-model product,
  // 64×64 at 8 tokens: 26.9 ms a call with R4 LANES 64 U4, 7.4 with R1 LANES 8 U1). Where the GPU's choice is
  // linear_matvec (null), the CPU keeps it: that kernel stays covered there.
  const set = matvecOverride(mode, T, N, K); // the bench's --tiling
  if (set) return set === "linear_matvec" ? null : set;
  if (cpuAdapter) return matvecConfig(mode, T, N, K) && { R: 1, LANES: 8, U: 1 };
  const persistent: MatvecConfig = { R: 4, LANES: 32, U: 4, persist: 264 };
  // 16-byte weight loads: gate/up at the token counts of gateUpVec, and the plain linears at 2 (wo 23.8 against
  // 24.9 µs, w2 47.1 against 51.0; at 3 tokens VEC was slower). The LM head's 220 → 212 µs at one token did
  // not show in the decode step's profile (0.225 → 0.227–0.230 ms, PERF.md v38) and wqkv gained 0.7 µs: they
  // keep their tilings. In the model on an H200 (PERF.md v76) a two-row step's wo (K = 6144) went faster
  // through linear_matvec, one row a lane: 9.55–9.57 → 9.17–9.18 ms a step (batch 2 208.5 → 217.3 tokens/s,
  // alternating three times); w2 (K = 16384) and T = 3–4 lost that way.
  if (K % 16 === 0) {
    if (mode === "gateUp" && gateUpVec[T]) return gateUpVec[T];
    if (mode === "linear" && T === 2) return K <= 8192 ? null : { R: 4, LANES: 64, U: 2, VEC: true };
  }
  if (mode === "gateUp") {
    if (T <= 3) return persistent;
    // 8 lanes a row at 6–8 tokens, chosen in the model (the sweeps disagree with it; PERF.md v48), alternating
    // pairs on an H100: batch 8 369.2–369.4 → 384.5–384.6 tokens/s, 7 (VEC R4 L16 U1 persistent before)
    // 355.3–356.5 → 369.9–370.0, 6 321.1–321.7 → 335.9–337.1; at 5 it lost (334.4–335.2 → 305.5–306.0).
    if (T >= 6) return { R: 2, LANES: 8, U: 4 };
    return T <= 4 ? { R: 4, LANES: 16, U: 2 } : { R: 2, LANES: 16, U: 4 };
  }
  if (mode === "linear") return T <= 1 ? null : { R: 4, LANES: 64, U: 4 };
  // The norm-fused products at one token (wqkv, the LM head) with eight words of each row in flight: with the
  // biased sums an H200's step took 7.210–7.219 ms against 7.256–7.258 with four, alternating (PERF.md v93);
  // with the exact sums eight gained nothing (7.269–7.270 against 7.265–7.269).
  if (mode === "norm" && T === 1) return { ...persistent, U: 8 };
  return persistent;
}

export interface MatvecArgs {
  mode: MatvecMode;
  x: Tensor; // [T, K] f32, T ≤ 8, K % 4 == 0
  g: Tensor | null; // [K] f32 RMSNorm weight (norm, gateUp)
  w1: Tensor; // [N, K] i8x4
  s1: Tensor; // [N] f32
  w3: Tensor | null; // [N, K] i8x4 (gateUp)
  s3: Tensor | null; // [N] f32 (gateUp)
  bias: Tensor | null; // [N] f32 (linear, norm)
  out: Tensor; // [T, N] f32
  eps?: number;
  accumulate?: boolean; // linear only: out += result
  config?: MatvecConfig;
  /** Tests only: fold the grid into 2-D sooner than the 65535 limit requires. */
  maxGroupsPerRow?: number;
  label: string;
}

/** Records one matvec_i8 dispatch. Shapes are checked by the public launchers that call this. */
export function recordMatvecI8(r: Recorder, a: MatvecArgs): void {
  const [T, K] = a.x.shape;
  const N = a.w1.shape[0];
  const c = a.config ?? matvecConfig(a.mode, T, N, K, r.fallbackAdapter);
  if (!c) throw new Error(`${a.label}: no matvec_i8 tiling for ${a.mode} at T=${T}, N=${N}`);
  if (a.mode === "gateUp" && c.R > 4) throw new Error(`${a.label}: gateUp takes at most 4 rows per thread`);
  if (c.VEC && K % 16 !== 0) throw new Error(`${a.label}: VEC needs K % 16 == 0, got K=${K}`);
  // kernels/matvec_i8_vec.wgsl always loads its weights: a "no weight loads" timing would be a mislabel.
  if (c.VEC && c.probe === 3) throw new Error(`${a.label}: PROBE 3 (no weight loads) is matvec_i8's only`);
  const biased = c.biased ?? (T === 1 && !c.I2F && r.halfSubnormals);
  if (biased && (T !== 1 || c.I2F)) throw new Error(`${a.label}: biased sums take one token and no I2F`);
  if (biased) expectHalfSubnormals(r, a.label);
  const blocks = matvecRowBlocks(c, N);
  const persist = persistentGroups(blocks, c.persist);
  const groups = persist || blocks;
  const groupsPerRow = Math.min(groups, a.maxGroupsPerRow ?? 65535);
  // Bindings the mode never reads still need a read-only buffer other than out (layout "auto").
  const any = a.s1;
  // Two kernels, one core (kernels/matvec_i8_core.wgsl): 16-byte weight loads in one module with the
  // word-at-a-time loop made every pipeline of either compile ~1.7× slower on llvmpipe.
  const kernel = c.VEC ? "matvec_i8_vec" : "matvec_i8";
  r.dispatch(kernel, {
    bindings: [a.x, a.g ?? any, a.w1, a.s1, a.w3 ?? a.w1, a.s3 ?? any, a.bias ?? any, a.out],
    params: [N, K / 4, f32(a.eps ?? 0), a.bias ? 1 : 0, groupsPerRow, a.accumulate ? 1 : 0, blocks, persist],
    workgroups: [groupsPerRow, Math.ceil(groups / groupsPerRow)],
    constants: {
      MODE: modeIds[a.mode],
      TT: T,
      R: c.R,
      LANES: c.LANES,
      U: c.U,
      I2F: c.I2F ? 1 : 0,
      BIASED: biased ? 1 : 0,
      PROBE: c.probe ?? 0,
      DOT_ADD: c.dotAdd ? 1 : 0,
      RED_LEN: matvecReductionLength(a.mode, c, T, blocks, persist),
    },
    label: `${kernel} ${a.label}`,
  });
}
