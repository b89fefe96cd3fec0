import { type LlmInt8Scratch, recordLinearLlmInt8 } from "./llm_int8.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { expectHalfSubnormals } from "../gpu/half_subnormals.ts";
import { expectTensor, frontView, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";
import { matvecConfig, recordMatvecI8 } from "./matvec_i8.ts";

/** GPU weights of one nn.Linear. Int8 weights stay int8 on the GPU (4 per u32 word). */
export type LinearWeights =
  | {
    kind: "int8";
    weight: Tensor; // [N, K] i8x4: int8 rows, K padded to a multiple of 4 with zeros
    scale: Tensor; // [N] f32 = SCB/127
    bias: Tensor | null; // [N] f32
  }
  | { kind: "f32"; weight: Tensor /* [N, K] f32 */; bias: Tensor | null /* [N] f32 */ };

/** One nn.Linear as read from the checkpoint (bitsandbytes int8 `CB` + `SCB`, or float). */
export interface HostLinear {
  kind: "int8" | "float";
  weight: Int8Array | Float32Array; // [out, in] row-major
  scb?: Float32Array; // [out], int8 only
  bias: Float32Array | null; // [out]
  outFeatures: number;
  inFeatures: number;
}

/**
 * Uploads one linear layer. Int8 rows are packed little-endian into u32 words (a no-op copy when
 * in % 4 == 0) and `scale = fround(SCB / 127)`.
 * Rounding: bitsandbytes dequantizes W = fround(fround(CB·SCB)/127) per element; the kernels instead
 * compute fround(SCB/127) · Σ x·CB (int8 → f32 is exact). Both are within a couple of f32 ulps per
 * product; the CPU reference (src/ref/linear.ts) uses the bitsandbytes per-element form and the tests
 * hold the kernels to the matmul tolerance against it.
 */
export function uploadLinear(gpu: Gpu, label: string, w: HostLinear): LinearWeights {
  const N = w.outFeatures, K = w.inFeatures;
  if (w.weight.length !== N * K) {
    throw new Error(`Linear ${label}: weight has ${w.weight.length} values, expected ${N}×${K} = ${N * K}`);
  }
  if (w.bias && w.bias.length !== N) {
    throw new Error(`Linear ${label}: bias has ${w.bias.length} values, expected ${N}`);
  }
  const bias = w.bias ? gpu.uploadTensor(`${label}.bias`, "f32", [N], w.bias) : null;
  if (w.kind === "float") {
    if (!(w.weight instanceof Float32Array)) throw new Error(`Linear ${label}: float weights must be f32`);
    return { kind: "f32", weight: gpu.uploadTensor(`${label}.weight`, "f32", [N, K], w.weight), bias };
  }
  if (!(w.weight instanceof Int8Array)) throw new Error(`Linear ${label}: int8 weights must be an Int8Array`);
  if (!w.scb || w.scb.length !== N) {
    throw new Error(
      `Linear ${label}: int8 weights need SCB with ${N} values, got ${w.scb?.length ?? "none"}`,
    );
  }
  const scale = new Float32Array(N);
  for (let n = 0; n < N; n++) scale[n] = w.scb[n] / 127;
  return {
    kind: "int8",
    weight: gpu.uploadTensor(`${label}.weight`, "i8x4", [N, K], packInt8Rows(w.weight, N, K)),
    scale: gpu.uploadTensor(`${label}.scale`, "f32", [N], scale),
    bias,
  };
}

/** int8 [rows, cols] → u32 words [rows, ceil(cols/4)], byte j of a word = element 4·word + j. */
export function packInt8Rows(data: Int8Array, rows: number, cols: number): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (cols % 4 === 0) return bytes; // already the word layout (little-endian host)
  const stride = Math.ceil(cols / 4) * 4;
  const out = new Uint8Array(rows * stride);
  for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * cols, (r + 1) * cols), r * stride);
  return out;
}

/** Most tokens the matrix-vector kernel takes (its accumulators are per-token registers). */
export const maxMatvecTokens = 8;

export type LinearVariant = "matvec" | "tiled";

/**
 * The kernel `linear` uses: matrix-vector for decode-sized T when x rows are 16-byte aligned (K % 4 == 0,
 * true for every layer of the real model), else the tiled kernel.
 */
export function linearVariant(T: number, K: number, _w: LinearWeights): LinearVariant {
  return T <= maxMatvecTokens && K % 4 === 0 ? "matvec" : "tiled";
}

export interface LinearOptions {
  /** out += x·Wᵀ + bias instead of out = …: the residual add folded into the layer (one dispatch less). */
  accumulate?: boolean;
  /** The tiled kernel's tiling instead of `tiledConfig`'s choice (tests and scripts/bench_gemm.ts). */
  tiled?: TiledConfig;
  /** INT8_MATMUL=llm-int8: int8 layers of many rows run bitsandbytes' LLM.int8 (src/ops/llm_int8.ts). */
  llmInt8?: LlmInt8Gemm | null;
  /** linear_matvec's form instead of `linearMatvecForm`'s choice (tests). */
  matvecForm?: LinearMatvecForm;
  /**
   * Scratch for the tiled kernel's split-K partials ([splits, T, N] f32 at its front): with it a product whose
   * tiles alone would leave the GPU idle splits K (`tiledSplits`). Without it, no split.
   */
  splitK?: Tensor | null;
  /** The split count instead of `tiledSplits`'s choice (tests, scripts/bench_gemm.ts); needs `splitK`. */
  splits?: number;
  /** LLM.int8: the call before ran on the same x (its int8 rows are in the scratch; `LlmInt8Options`). */
  llmInt8RowsReady?: boolean;
}

/**
 * How kernels/linear_matvec.wgsl lays its rows out: lanes a weight row (its override LANES), and, for int8
 * weights at one token, two rows a lane sharing each x load (ROWS2). 8 rows a workgroup either way.
 */
export interface LinearMatvecForm {
  lanes: 8 | 32 | 64;
  twoRows?: boolean;
  /**
   * Two rows a lane only, on a device that keeps subnormal half floats (Recorder.halfSubnormals): the
   * weights widen to (b + 128)·2⁻²⁴ (kernels/int8.wgsl) and each word's two chains start from −I8_BIAS·Σx
   * of the word: one addition a row and word instead of four subtractions.
   */
  biased?: boolean;
}

/**
 * Whether linear_matvec takes `form` at T tokens: two rows a lane only for int8 weights at one token, biased
 * sums only with two rows a lane.
 */
export function matvecFormApplies(form: LinearMatvecForm, T: number, int8: boolean): boolean {
  return (!form.twoRows || (T === 1 && int8)) && (!form.biased || form.twoRows === true);
}

/** Every form (tests run each where it applies). */
export const linearMatvecForms: readonly LinearMatvecForm[] = [
  { lanes: 32 },
  { lanes: 8 },
  { lanes: 64, twoRows: true },
  { lanes: 8, twoRows: true },
  { lanes: 64, twoRows: true, biased: true },
  { lanes: 8, twoRows: true, biased: true },
];

/**
 * On a GPU, int8 weights at one token (the decode step's wo and w2): 64 lanes a row, two rows a lane — H200,
 * 7.73 → 7.58 ms a step, alternating three times (PERF.md v71; in the same trials two rows at 32 or 128 lanes,
 * four rows a lane and eight words of each row in flight were slower). Otherwise 32 lanes (one warp a row).
 * A CPU adapter (Mesa's llvmpipe) runs a workgroup as 8-lane vectors and switches between them at every
 * barrier of the reduction: there 8 lanes (64 threads) took a tiny-model decode product (64×64, one token)
 * from 4.1–4.5 to 1.3–1.4 ms a call.
 */
export function linearMatvecForm(r: Recorder, T: number, int8: boolean): LinearMatvecForm {
  if (r.fallbackAdapter) return { lanes: 8 };
  return T === 1 && int8 ? { lanes: 64, twoRows: true, biased: r.halfSubnormals } : { lanes: 32 };
}

/** What the many-row LLM.int8 path needs: its scratch (sized for the largest layer) and the threshold. */
export interface LlmInt8Gemm {
  scratch: LlmInt8Scratch;
  threshold: number;
}

/**
 * One tiling of kernels/linear_tiled.wgsl (its override constants): a workgroup of TX×TY threads computes a
 * BM×BN = 4·RH·TY × 4·CW·TX tile of out, each thread 4·RH rows × 4·CW columns, K in steps of BK.
 */
export interface TiledConfig {
  TX: number; // threads along N, a multiple of 8
  TY: number; // threads along T, a multiple of 4
  RH?: 2 | 4; // 4-row groups per thread (default 2): 8 or 16 rows
  CW: 1 | 2 | 4; // 4-column groups per thread; RH·CW ≤ 8 (8×4, 8×8, 8×16, 16×4 or 16×8 accumulators)
  BK: 8 | 16 | 32;
  GM: number; // tile rows per group of the launch order (L2 reuse between neighbouring workgroups)
  PF?: boolean; // each step's last k multiplied after the barrier (hides the next step's first reads)
}

/**
 * Every tiling the kernel is tested with and scripts/bench_gemm.ts times. Indices 1, 4, 9, 19 and 21 are what
 * `tiledConfig` picks; new tilings go at the end.
 */
export const tiledConfigs: readonly TiledConfig[] = [
  { TX: 16, TY: 16, CW: 2, BK: 16, GM: 8 }, // 128×128
  { TX: 16, TY: 16, CW: 2, BK: 8, GM: 8 },
  { TX: 16, TY: 16, CW: 2, BK: 16, GM: 1 },
  { TX: 8, TY: 16, CW: 2, BK: 16, GM: 8 }, // 128×64, 128 threads
  { TX: 8, TY: 16, CW: 2, BK: 8, GM: 8 },
  { TX: 16, TY: 8, CW: 2, BK: 16, GM: 8 }, // 64×128, 128 threads
  { TX: 16, TY: 8, CW: 2, BK: 8, GM: 8 },
  { TX: 16, TY: 16, CW: 1, BK: 16, GM: 8 }, // 128×64 with 8×4 accumulators (fewer registers)
  { TX: 8, TY: 8, CW: 2, BK: 16, GM: 8 }, // 64×64, 64 threads
  { TX: 16, TY: 8, CW: 1, BK: 16, GM: 8 }, // 64×64, 128 threads, 8×4
  // The best two above with the last k of each step after the barrier.
  { TX: 16, TY: 16, CW: 2, BK: 8, GM: 8, PF: true }, // 128×128
  { TX: 8, TY: 16, CW: 2, BK: 8, GM: 8, PF: true }, // 128×64
  // 128 accumulators a thread (cutlass's SIMT SGEMM shape): 12 shared reads per 128 FMAs instead of 8 per 64.
  { TX: 16, TY: 16, RH: 4, CW: 2, BK: 8, GM: 8 }, // 256×128, 256 threads
  { TX: 16, TY: 16, RH: 4, CW: 2, BK: 8, GM: 8, PF: true },
  { TX: 16, TY: 8, RH: 4, CW: 2, BK: 8, GM: 8 }, // 128×128, 128 threads
  { TX: 16, TY: 8, RH: 4, CW: 2, BK: 8, GM: 8, PF: true },
  { TX: 16, TY: 8, RH: 4, CW: 2, BK: 16, GM: 8, PF: true },
  { TX: 8, TY: 16, CW: 4, BK: 8, GM: 8, PF: true }, // 128×128, 128 threads, 8×16
  { TX: 16, TY: 16, CW: 4, BK: 8, GM: 8, PF: true }, // 128×256, 256 threads
  // CPU adapters (`tiledConfig`): 64×64, 32 threads (4 vectors of 8 lanes on llvmpipe), 16×8 a thread.
  { TX: 8, TY: 4, RH: 4, CW: 2, BK: 8, GM: 8 },
  // 32 rows (a short prompt or step of ≤ 32 rows computes half the rows of a 64-row tile), 64 threads.
  { TX: 16, TY: 4, CW: 1, BK: 16, GM: 8 }, // 32×64, 8×4
  { TX: 16, TY: 4, CW: 2, BK: 8, GM: 8 }, // 32×128, 8×8
];

export function tiledConfigName(c: TiledConfig): string {
  const rh = c.RH ?? 2;
  return `${4 * rh * c.TY}x${4 * c.CW * c.TX} k${c.BK} ${4 * rh}x${4 * c.CW} g${c.GM}${c.PF ? " pf" : ""}`;
}

/** Workgroup memory of a tiling: two buffers of BM×BK x and BN×BK weights, f32. */
export function tiledSharedBytes(c: TiledConfig): number {
  return 2 * (4 * (c.RH ?? 2) * c.TY + 4 * c.CW * c.TX) * c.BK * 4;
}

/** Throws unless the kernel can run `c`: whole warps, 1–4 loads per thread and step, ≤ 32 KiB shared. */
export function checkTiledConfig(c: TiledConfig): void {
  const rh = c.RH ?? 2, threads = c.TX * c.TY, kq = c.BK / 4;
  const slots = [4 * rh * c.TY * kq / threads, 4 * c.CW * c.TX * kq / threads];
  const ok = c.TX % 8 === 0 && c.TY % 4 === 0 && threads <= 1024 && [2, 4].includes(rh) &&
    [1, 2, 4].includes(c.CW) && rh * c.CW <= 8 && [8, 16, 32].includes(c.BK) && Number.isInteger(c.GM) &&
    c.GM >= 1 && [undefined, false, true].includes(c.PF) &&
    slots.every((s) => Number.isInteger(s) && s >= 1 && s <= 4) && tiledSharedBytes(c) <= 32768;
  if (!ok) throw new Error(`linear_tiled: unsupported tiling ${JSON.stringify(c)} (${tiledConfigName(c)})`);
}

/**
 * The tiling `linear` uses for T tokens, from scripts/bench_gemm.ts on an H100 (2026-11-26,
 * bench/results/2026-11-26-h100-gemm{,-v2}.log; old kernel 20–22 TFLOP/s): 128×128 with BK 8 beyond 64 rows
 * (ViT 7175 rows: 42 TFLOP/s; LLM prefill 1800 rows: 38–40, within 3 % of the best tiling there), 128×64
 * for f32 weights (the ViT patch embedding and the projector's f32 layer: 39–41 TFLOP/s, 128×128 29–30),
 * and 64×64 with 8×4 accumulators for a short prompt (64 rows: 17.9 TFLOP/s, the 8×8 64×64 tiling 8.3).
 * None of tilings 10–18 (16×8 / 8×16 per thread, PF) beat 128×128 8×8 at the ViT shapes (44.8–52.6 ms vs
 * 41.6 ms for the four). Up to 32 rows of int8 weights, 32×128 (half a 64-row tile's work; H200 with split
 * K, PERF.md v65: a layer's products at 32 rows 0.97 ms against 1.61 in 64×64 tiles and 1.54 as 8-row
 * chunks). Few tilings, so the engine's warm-up builds every prompt-pass pipeline with a prompt of each row
 * class and one image tile.
 */
export function tiledConfig(
  T: number,
  _N: number,
  _K: number,
  f32Weights = false,
  cpuAdapter = false,
): TiledConfig {
  // A CPU adapter (Mesa's llvmpipe) loads workgroup memory lane by lane and switches between its 8-lane
  // vectors at every barrier: few threads and many FMAs a load were fastest there (tiny-model shapes, ms a
  // call against the GPU choice: ViT qkv 1025×192×64 int8 33 against 49, 1025×64×128 22 against 47, the
  // f32 patch embedding 1024×64×588 81 against 94).
  if (cpuAdapter) return tiledConfigs[19];
  if (T <= 32 && !f32Weights) return tiledConfigs[21];
  return T <= 64 ? tiledConfigs[9] : f32Weights ? tiledConfigs[4] : tiledConfigs[1];
}

/** out = x·Wᵀ + bias. x: [T, K] f32, W: [N, K], out: [T, N] f32 (must not alias x). */
export function linear(
  r: Recorder,
  x: Tensor,
  w: LinearWeights,
  out: Tensor,
  options: LinearOptions = {},
): void {
  const variant = linearVariant(x.shape[0], x.shape[1], w);
  if (options.llmInt8 && variant === "tiled" && w.kind === "int8" && x.shape[1] % 4 === 0) {
    recordLinearLlmInt8(r, x, w, out, options.llmInt8.scratch, {
      threshold: options.llmInt8.threshold,
      accumulate: options.accumulate,
      rowsReady: options.llmInt8RowsReady,
    });
    return;
  }
  recordLinear(r, x, w, out, variant, options);
}

/** `linear` with the kernel chosen by the caller (tests exercise both on the same shapes). */
export function recordLinear(
  r: Recorder,
  x: Tensor,
  w: LinearWeights,
  out: Tensor,
  variant: LinearVariant,
  options: LinearOptions = {},
): void {
  const [T, K] = x.shape;
  if (x.buffer === out.buffer) {
    throw new Error(`linear ${w.weight.label}: out (${out.label}) must not alias x`);
  }
  const accumulate = options.accumulate ? 1 : 0;
  const N = w.weight.shape[0];
  const what = `linear ${w.weight.label}`;
  expectTensor(`${what} x`, x, "f32", [T, K]);
  expectTensor(`${what} weight`, w.weight, w.kind === "int8" ? "i8x4" : "f32", [N, K]);
  expectTensor(`${what} out`, out, "f32", [T, N]);
  if (w.kind === "int8") expectTensor(`${what} scale`, w.scale, "f32", [N]);
  if (w.bias) expectTensor(`${what} bias`, w.bias, "f32", [N]);
  const scale = w.kind === "int8" ? w.scale : null;
  // Unused bindings still need a read-only buffer (layout "auto" keeps every binding the shader names).
  const scaleOrAny = scale ?? w.bias ?? x;
  const biasOrAny = w.bias ?? scaleOrAny;
  const flags = [scale ? 1 : 0, w.bias ? 1 : 0];
  const INT8 = w.kind === "int8" ? 1 : 0;
  if (variant === "matvec") {
    if (linearVariant(T, K, w) !== "matvec") {
      throw new Error(
        `${what}: the matvec kernel needs T ≤ ${maxMatvecTokens} and aligned rows (T=${T}, K=${K})`,
      );
    }
    const form = options.matvecForm ?? linearMatvecForm(r, T, w.kind === "int8");
    if (!matvecFormApplies(form, T, w.kind === "int8")) {
      throw new Error(
        `${what}: two rows a lane take int8 weights at one token, biased sums two rows a lane (T=${T}, ${w.kind})`,
      );
    }
    if (form.biased) expectHalfSubnormals(r, what);
    // int8 at T ≥ 2: kernels/matvec_i8.wgsl (rows per thread share each x load; 1.7–3.2× at T = 4, 8 on
    // an H100); at T = 1, at T = 2 with K ≤ 8192 (matvecConfig) and for f32 weights linear_matvec is faster.
    const config = w.kind === "int8" ? matvecConfig("linear", T, N, K, r.fallbackAdapter) : null;
    if (w.kind === "int8" && config) {
      recordMatvecI8(r, {
        mode: "linear",
        x,
        g: null,
        w1: w.weight,
        s1: w.scale,
        w3: null,
        s3: null,
        bias: w.bias,
        out,
        accumulate: options.accumulate,
        config,
        label: w.weight.label,
      });
      return;
    }
    const { workgroups, groupsPerRow } = flatGrid(N, 8); // 8 rows a workgroup: ROWS in linear_matvec.wgsl
    r.dispatch("linear_matvec", {
      bindings: [x, w.weight, scaleOrAny, biasOrAny, out],
      params: [N, K / 4, w.kind === "int8" ? K / 4 : K, ...flags, groupsPerRow, accumulate],
      workgroups,
      constants: { INT8, TT: T, LANES: form.lanes, ROWS2: form.twoRows ? 1 : 0, BIASED: form.biased ? 1 : 0 },
      label: `linear_matvec ${w.weight.label}`,
    });
  } else {
    const kw = w.kind === "int8" ? Math.ceil(K / 4) : K;
    const config = options.tiled ?? tiledConfig(T, N, K, w.kind === "f32", r.fallbackAdapter);
    const scratch = options.splitK;
    const chosen = scratch
      ? splitOf(K, config, options.splits ?? tiledSplits(T, N, K, config, scratch.byteLength / 4))
      : null;
    const split = chosen && chosen.splits > 1 ? chosen : undefined;
    if (split && scratch && split.splits * T * N > scratch.byteLength / 4) {
      throw new Error(`${what}: ${split.splits} splits of [${T}, ${N}] do not fit ${scratch.label}`);
    }
    // Split: the raw sums of each K slice into the front of the scratch, then their sum into out.
    const partial = split && scratch ? frontView(scratch, [split.splits * T, N]) : null;
    recordTiled(r, {
      x,
      weight: w.weight,
      scale: scaleOrAny,
      bias: biasOrAny,
      out: partial ?? out,
      params: [T, N, K, kw, ...flags, accumulate, 0],
      int8: w.kind === "int8",
      vec: K % 4 === 0,
      dynamicK: null,
      config,
      label: `linear_tiled ${w.weight.label}`,
      split,
    });
    if (split && partial) {
      const { workgroups, groupsPerRow } = flatGrid(T * N);
      r.dispatch("linear_split_sum", {
        bindings: [partial, scaleOrAny, biasOrAny, out],
        params: [T * N, N, split.splits, ...flags, accumulate, groupsPerRow],
        workgroups,
        label: `linear_split_sum ${w.weight.label}`,
      });
    }
  }
}

/** What the split-K rules need of a tiling (kernels/linear_tiled.wgsl's and kernels/linear_dp4a.wgsl's). */
export interface TileShape {
  TX: number;
  TY: number;
  RH?: number;
  CW: number;
  BK: number; // k per step
}

/** A tiling's override constants that kernels/linear_tiled.wgsl and kernels/linear_dp4a.wgsl share. */
export function tileConstants(c: TileShape & { GM: number }): Record<string, number> {
  return { TX: c.TX, TY: c.TY, RH: c.RH ?? 2, CW: c.CW, BK: c.BK, GM: c.GM };
}

/** A tiled kernel's output tiles for T rows of N outputs: [along N, along T] (its grid without splits). */
export function tileGrid(c: TileShape, T: number, N: number): [number, number] {
  return [Math.ceil(N / (4 * c.CW * c.TX)), Math.ceil(T / (4 * (c.RH ?? 2) * c.TY))];
}

/** A split count's K per split: whole steps of BK, and no split left empty. */
export function splitOf(K: number, c: TileShape, splits: number): { splits: number; kslice: number } {
  const kslice = Math.ceil(Math.ceil(K / Math.max(1, splits)) / c.BK) * c.BK;
  return { splits: Math.ceil(K / kslice), kslice };
}

/**
 * Workgroups a tiled product splits K to reach (`tiledSplits`), from how many tiles on, and the fewest k steps
 * a split keeps (the last two also bound LLM.int8's GEMM, `dp4aSplits`).
 */
export const splitTargetWorkgroups = 768;
export const unsplitTiles = 256;
export const minStepsPerSplit = 8;

/**
 * Splits of K for the tiled kernel on T rows: ~splitTargetWorkgroups workgroups where the output tiles alone
 * are fewer than unsplitTiles, at least minStepsPerSplit steps of BK each, and the partials within
 * `scratchFloats`. A short prompt's tiles are one row of 64×64 (or 128×128) tiles: 48–256 workgroups at the
 * language model's widths. H200, weight-only (`scripts/bench_gemm.ts --tokens 16,32,64,128,256 --splits
 * 1,2,4,8,16`, PERF.md v64), µs at 64 rows unsplit → split: wo 359 → 169 (8 splits), w2 975 → 422 (8),
 * wqkv 370 → 210–222 (2–8); w1 (256 tiles) 392, 409 in 2; at 256 rows w1 1245 unsplit, 1402 in 2.
 */
export function tiledSplits(T: number, N: number, K: number, c: TiledConfig, scratchFloats: number): number {
  const [cols, rows] = tileGrid(c, T, N);
  const tiles = cols * rows;
  if (tiles >= unsplitTiles) return 1;
  const want = Math.round(splitTargetWorkgroups / tiles);
  const most = Math.min(Math.floor(K / (c.BK * minStepsPerSplit)), Math.floor(scratchFloats / (T * N)));
  return Math.max(1, Math.min(want, most));
}

/**
 * One kernels/linear_tiled.wgsl dispatch: params [T, N, K, kw, has_scale, has_bias, accumulate, kskip];
 * `dynamicK`: DYNK, k bounded by the u32 count at the front of that tensor (LLM.int8's outlier columns).
 */
export function recordTiled(r: Recorder, d: {
  x: Tensor;
  weight: Tensor;
  scale: Tensor;
  bias: Tensor;
  out: Tensor;
  params: number[];
  int8: boolean;
  vec: boolean;
  dynamicK: Tensor | null;
  config: TiledConfig;
  label: string;
  /** SPLIT: raw sums of each K slice into `out` as [splits, T, N] (kernels/linear_split_sum.wgsl adds them). */
  split?: { splits: number; kslice: number };
}): void {
  const c = d.config;
  checkTiledConfig(c);
  const [T, N] = [d.params[0], d.params[1]];
  // Bindings 6 and 7 view x and W again as 16-byte vectors (VEC: rows 16-byte aligned); binding 8 is the
  // count (DYNK; any u32 buffer otherwise).
  r.dispatch("linear_tiled", {
    bindings: [d.x, d.weight, d.scale, d.bias, d.out, d.x, d.weight, d.dynamicK ?? d.weight],
    params: [...d.params, d.split?.kslice ?? 0],
    workgroups: [...tileGrid(c, T, N), d.split?.splits ?? 1],
    constants: {
      SPLIT: d.split ? 1 : 0,
      INT8: d.int8 ? 1 : 0,
      VEC: d.vec ? 1 : 0,
      DYNK: d.dynamicK ? 1 : 0,
      ...tileConstants(c),
      PF: c.PF ? 1 : 0,
    },
    label: d.label,
  });
}
