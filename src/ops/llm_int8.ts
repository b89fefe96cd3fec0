import type { Gpu } from "../gpu/device.ts";
import { f32, type Recorder } from "../gpu/recorder.ts";
import { expectTensor, frontView, Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";
import {
  type LinearWeights,
  minStepsPerSplit,
  recordTiled,
  splitOf,
  tileConstants,
  tiledConfig,
  tileGrid,
  unsplitTiles,
} from "./linear.ts";

// bitsandbytes' LLM.int8 matrix multiply (MatMul8bitLt, `Linear8bitLt(threshold=6.0)`, which the real
// InternVL-Chat-V1.5-Int8 checkpoint runs for every int8 nn.Linear) for many tokens, in four dispatches:
//   kernels/llm_int8_outliers.wgsl  CLEAR: flags = 0, then flags[c] = 1 where any |x[t, c]| ≥ θ
//   kernels/llm_int8_quantize.wgsl  per row sca = absmax below θ, q = int8 row with outlier columns 0;
//                                   workgroup 0 lists the outlier columns
//   kernels/linear_dp4a.wgsl        out = q·CBᵀ (dot4I8Packed, exact i32)·sca/127·scale + the outlier
//                                   columns in f32 + bias
// Each pass needs the previous one complete (a dispatch cannot wait for other workgroups), hence four.
// CPU reference: src/ref/llm_int8.ts. DIFF: bitsandbytes multiplies the outlier columns in fp16 and
// dequantizes in fp16; here they are f32 (see the reference for the exact formula).

/** bitsandbytes' default `llm_int8_threshold`, the value the checkpoint's config uses. */
export const llmInt8Threshold = 6.0;

export type Int8LinearWeights = Extract<LinearWeights, { kind: "int8" }>;

/** K rounded up to 16: the length of a q row, so the GEMM reads every q row as whole 16-byte words. */
export function paddedK(K: number): number {
  return Math.ceil(K / 16) * 16;
}

/** The scratch of one call for T tokens, K inputs and N outputs: views of an `LlmInt8Scratch`. */
export interface LlmInt8Views {
  flags: Tensor; // [K] u32: 1 = outlier column
  outliers: Tensor; // [1 + K] u32: count, then the outlier columns in increasing order
  q: Tensor; // [T, paddedK(K)] i8x4: int8 rows, outlier and pad columns 0
  sca: Tensor; // [T] f32: per-row absmax of the values below θ
  xo: Tensor; // [T, cap] f32: x at the first `cap` outlier columns (llm_int8_gather)
  wo: Tensor; // [N, cap] i8x4: the weights at those columns
  /** The GEMM's split-K partial sums (`dp4aSplits`), the whole buffer; null: the GEMM never splits. */
  parts: Tensor | null;
}

/** Outlier columns the GEMM takes from compact copies by default; any beyond are read one by one. */
export const defaultOutlierCap = 512;
/**
 * The model's caps (columns past one go through the GEMM epilogue's slow scattered loop). On the bench's
 * random weights (H100, 2026-11-26) the ViT's fc2 input has at most 460 outlier columns at 13 tiles; the
 * LM's w2 input of an 1800-token prompt has 6567 of 16384 at the first layer, falling to 2156 at the
 * last (with a cap of 4096 the first 14 layers' excess took the slow loop: w2's int8 GEMM 273 ms a prompt
 * instead of 183).
 */
export const visionOutlierCap = 1024;
export const languageOutlierCap = 8192;

/**
 * Scratch for `recordLinearLlmInt8`, built once for the largest call (tokens × in-features, and the most
 * out-features) and shared by every layer: a call uses the front of each buffer (the hot path allocates
 * nothing). `cap` (a multiple of 4): outlier columns copied compactly for the GEMM.
 */
export class LlmInt8Scratch {
  readonly flags: Tensor; // [maxK] u32
  readonly outliers: Tensor; // [1 + maxK] u32
  readonly q: Tensor; // [maxTokens, paddedK(maxK)] i8x4
  readonly sca: Tensor; // [maxTokens] f32
  readonly xo: Tensor; // [maxTokens, cap] f32
  readonly wo: Tensor; // [maxN, cap] i8x4
  readonly parts: Tensor | null; // [partsWords] u32, or none

  constructor(
    gpu: Gpu,
    readonly label: string,
    readonly maxTokens: number,
    readonly maxK: number,
    readonly maxN = maxK,
    readonly cap = defaultOutlierCap,
    /**
     * Room for the GEMM to split K where its tiles are few (short prompts; `dp4aPartsWords` for every split
     * it chooses); without it, it never does.
     */
    partsWords = 0,
  ) {
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1 && Number.isInteger(maxK) && maxK >= 4)) {
      throw new Error(`LlmInt8Scratch ${label}: needs ≥ 1 token and K ≥ 4, got ${maxTokens} × ${maxK}`);
    }
    if (!(Number.isInteger(maxN) && maxN >= 1 && Number.isInteger(cap) && cap >= 4 && cap % 4 === 0)) {
      throw new Error(`LlmInt8Scratch ${label}: needs N ≥ 1 and a cap that is a positive multiple of 4`);
    }
    this.flags = gpu.createTensor(`${label}.flags`, "u32", [maxK]);
    this.outliers = gpu.createTensor(`${label}.outliers`, "u32", [1 + maxK]);
    this.q = gpu.createTensor(`${label}.q`, "i8x4", [maxTokens, paddedK(maxK)]);
    this.sca = gpu.createTensor(`${label}.sca`, "f32", [maxTokens]);
    this.xo = gpu.createTensor(`${label}.xo`, "f32", [maxTokens, cap]);
    this.wo = gpu.createTensor(`${label}.wo`, "i8x4", [maxN, cap]);
    this.parts = partsWords > 0 ? gpu.createTensor(`${label}.parts`, "u32", [partsWords]) : null;
  }

  /** Views for a call of T tokens × K inputs × N outputs; throws when the scratch is too small. */
  views(T: number, K: number, N: number): LlmInt8Views {
    if (T > this.maxTokens || K > this.maxK || N > this.maxN) {
      throw new Error(
        `LlmInt8Scratch ${this.label} holds ${this.maxTokens} tokens × ${this.maxK} inputs × ${this.maxN} ` +
          `outputs, not ${T} × ${K} × ${N}: build it for the largest layer`,
      );
    }
    return {
      flags: frontView(this.flags, [K]),
      outliers: frontView(this.outliers, [1 + K]),
      q: frontView(this.q, [T, paddedK(K)]),
      sca: frontView(this.sca, [T]),
      xo: frontView(this.xo, [T, this.cap]),
      wo: frontView(this.wo, [N, this.cap]),
      parts: this.parts,
    };
  }

  /** GPU bytes of its buffers. */
  get byteLength(): number {
    return this.tensors.reduce((n, t) => n + t.buffer.size, 0);
  }

  destroy(): void {
    for (const t of this.tensors) t.buffer.destroy();
  }

  private get tensors(): Tensor[] {
    return [this.flags, this.outliers, this.q, this.sca, this.xo, this.wo, ...this.parts ? [this.parts] : []];
  }
}

/**
 * One LlmInt8Scratch for calls of any token count (prompt passes of any length), regrown to the next
 * multiple of 512 tokens when a longer call comes, so a prompt reuses it instead of allocating its own.
 * Its owner destroys it.
 */
export class LlmInt8ScratchPool {
  private current: LlmInt8Scratch | null = null;

  constructor(
    private readonly gpu: Gpu,
    readonly label: string,
    readonly maxK: number,
    readonly maxN: number,
    readonly cap: number,
    readonly splitK = false,
  ) {}

  /** A scratch for `tokens` tokens (valid until a longer call regrows the pool). */
  forTokens(tokens: number): LlmInt8Scratch {
    if (!this.current || this.current.maxTokens < tokens) {
      this.current?.destroy(); // work already submitted with it still completes
      const rows = Math.ceil(tokens / 512) * 512;
      const parts = this.splitK ? dp4aPartsWords(rows, this.maxK, this.maxN) : 0;
      this.current = new LlmInt8Scratch(this.gpu, this.label, rows, this.maxK, this.maxN, this.cap, parts);
    }
    return this.current;
  }

  destroy(): void {
    this.current?.destroy();
    this.current = null;
  }
}

/**
 * One tiling of kernels/linear_dp4a.wgsl (its override constants): a workgroup of TX×TY threads computes a
 * BM×BN = 4·RH·TY × 4·CW·TX tile of out, each thread 4·RH rows × 4·CW columns of i32, K in steps of BK.
 */
export interface Dp4aTiling {
  TX: number; // threads along N, a multiple of 8
  TY: number; // threads along T, a multiple of 4
  RH?: 2 | 4; // 4-row groups per thread (default 2): 8 or 16 rows
  CW: 1 | 2; // 4-column groups per thread
  BK: 32 | 64; // k per step (8 or 16 int8 words)
  GM: number; // tile rows per group of the launch order (L2 reuse between neighbouring workgroups)
}

/**
 * The tilings tests run and scripts/bench_linear_dp4a.ts sweeps (`--configs`); new ones go at the end.
 * H100, 2026-11-26 (bench_linear_dp4a, 8 outlier columns, GEMM alone; ViT = qkv+proj+fc1+fc2 at 7175 rows,
 * LLM = wqkv+wo+w1+w2 at 1800 rows): 64×64 k64 8×4 17.8 / 11.0 ms, 64×128 8×8 18.1 / 11.3, 128×64 16×4
 * 18.0 / 11.3, 128×128 8×8 (linear_tiled's shape) 20.9 / 13.4, 256×128 16×8 21.5 / 12.8; the f32 path
 * (linear_tiled) 41.7 / 27.4 ms. Also timed and slower: 64×64 at BK 32, 8×8 with 64 threads, 64×32,
 * 128×32, GM 4 and 16, and linear_tiled's PF (a step's last word after the barrier).
 */
export const dp4aTilings: readonly Dp4aTiling[] = [
  { TX: 16, TY: 8, CW: 1, BK: 64, GM: 8 }, // 64×64, 128 threads, 8×4: the default
  { TX: 16, TY: 8, CW: 2, BK: 32, GM: 8 }, // 64×128, 128 threads, 8×8
  { TX: 16, TY: 8, RH: 4, CW: 1, BK: 32, GM: 8 }, // 128×64, 128 threads, 16×4
  { TX: 16, TY: 16, CW: 2, BK: 32, GM: 8 }, // 128×128, 256 threads, 8×8
  { TX: 16, TY: 16, RH: 4, CW: 2, BK: 32, GM: 8 }, // 256×128, 256 threads, 16×8
  { TX: 16, TY: 4, CW: 1, BK: 64, GM: 8 }, // 32×64, 64 threads, 8×4
  { TX: 32, TY: 4, CW: 1, BK: 64, GM: 8 }, // 32×128, 128 threads, 8×4
  { TX: 16, TY: 4, CW: 2, BK: 32, GM: 8 }, // 32×128, 64 threads, 8×8
];

export function dp4aTilingName(c: Dp4aTiling): string {
  const rh = c.RH ?? 2;
  return `${4 * rh * c.TY}x${4 * c.CW * c.TX} k${c.BK} ${4 * rh}x${4 * c.CW} g${c.GM}`;
}

/** Workgroup memory of a tiling: two buffers of BM×BK and BN×BK int8. */
export function dp4aSharedBytes(c: Dp4aTiling): number {
  return 2 * (4 * (c.RH ?? 2) * c.TY + 4 * c.CW * c.TX) * c.BK;
}

/** Throws unless the kernel can run `c`: whole warps, 1–4 loads per thread and step, ≤ 32 KiB shared. */
export function checkDp4aTiling(c: Dp4aTiling): void {
  const rh = c.RH ?? 2, threads = c.TX * c.TY, sq = c.BK / 16;
  const slots = [4 * rh * c.TY * sq / threads, 4 * c.CW * c.TX * sq / threads];
  const ok = c.TX % 8 === 0 && c.TY % 4 === 0 && threads <= 1024 && [2, 4].includes(rh) &&
    [1, 2].includes(c.CW) && [32, 64].includes(c.BK) && Number.isInteger(c.GM) &&
    c.GM >= 1 &&
    slots.every((s) => Number.isInteger(s) && s >= 1 && s <= 4) && dp4aSharedBytes(c) <= 32768;
  if (!ok) throw new Error(`linear_dp4a: unsupported tiling ${JSON.stringify(c)} (${dp4aTilingName(c)})`);
}

/**
 * The tiling `recordLinearLlmInt8` uses: 64×64, the fastest at every prefill and vision shape on an H100 (its
 * small tile also suits short prompts); up to 32 rows 32×128, with split K (`dp4aSplits`) where the scratch
 * has parts.
 */
export function dp4aTiling(T: number, _N: number, _K: number): Dp4aTiling {
  return T <= 32 ? dp4aTilings[6] : dp4aTilings[0];
}

/**
 * Splits of K for the GEMM where its output tiles are fewer than 256 (short prompts, steps of 33–64 rows):
 * `dp4aSplitCount`, with ≥ 8 steps of BK a split and no more than `parts` holds (null: none). H200
 * (`scripts/bench_linear_dp4a.ts --lm-tokens 16|64|128 --splits 1,4,8,16`, PERF.md v66), the int8 product
 * alone, µs unsplit → in 4: 16 rows in 32×128 tiles wqkv 131 → 60, wo 132 → 61, w1 153 → 128, w2 372 → 145
 * (8 and 16 splits slower at every shape: 71–109 µs for wo); 64 rows in 64×64 tiles wqkv 128 → 98, wo 148 →
 * 99, w2 434 → 251 (w1's 256 tiles 226 → 228); 128 rows wo 179 → 148, w2 602 → 445.
 */
export function dp4aSplits(T: number, N: number, K: number, c: Dp4aTiling, parts: Tensor | null): number {
  if (!parts) return 1;
  const [cols, rows] = tileGrid(c, T, N);
  if (cols * rows >= unsplitTiles) return 1;
  const fit = Math.floor(parts.numel / (cols * rows * dp4aTileWords(c)));
  return Math.max(1, Math.min(dp4aSplitCount, Math.floor(K / (c.BK * minStepsPerSplit)), fit));
}

/** The GEMM's splits of K where it splits (`dp4aSplits`). */
export const dp4aSplitCount = 4;

/** i32 words of one output tile: BM × BN. */
export function dp4aTileWords(c: Dp4aTiling): number {
  return 4 * (c.RH ?? 2) * c.TY * 4 * c.CW * c.TX;
}

/**
 * Words of split-K partials enough for every call of up to maxTokens × maxK × maxN to split as `dp4aSplits`
 * wants: a split product has fewer than 256 tiles, so at most 4 × 255 tiles' worth, and never more than its
 * whole output once per split it can take.
 */
export function dp4aPartsWords(maxTokens: number, maxK: number, maxN: number): number {
  const tilings = new Set(Array.from({ length: maxTokens }, (_, i) => dp4aTiling(i + 1, maxN, maxK)));
  return Math.max(
    0,
    ...[...tilings].map((c) => {
      const [cols, rows] = tileGrid(c, maxTokens, maxN);
      const most = Math.min(dp4aSplitCount, Math.max(1, Math.floor(maxK / (c.BK * minStepsPerSplit))));
      return dp4aTileWords(c) * Math.min(dp4aSplitCount * (unsplitTiles - 1), cols * rows * most);
    }),
  );
}

function checkThreshold(threshold: number): void {
  if (!(threshold > 0)) {
    throw new Error(`LLM.int8 threshold ${threshold} must be > 0 (Infinity: no outlier columns)`);
  }
}

/** Passes 1–2: flags[c] = 1 where any |x[t, c]| ≥ threshold, else 0. x: [T, K] f32 (K % 4 == 0). */
export function llmInt8Outliers(r: Recorder, x: Tensor, flags: Tensor, threshold = llmInt8Threshold): void {
  const [T, K] = x.shape;
  if (K % 4 !== 0) throw new Error(`llmInt8Outliers ${x.label}: K = ${K} is not a multiple of 4`);
  expectTensor("llmInt8Outliers flags", flags, "u32", [K]);
  checkThreshold(threshold);
  const clear = flatGrid(K);
  r.dispatch("llm_int8_outliers", {
    bindings: [x, flags],
    params: [K, K / 4, f32(threshold), clear.groupsPerRow],
    workgroups: clear.workgroups,
    constants: { CLEAR: 1 },
    label: `llm_int8_outliers.clear ${x.label}`,
  });
  const scan = flatGrid(T * K / 4);
  r.dispatch("llm_int8_outliers", {
    bindings: [x, flags],
    params: [T * K / 4, K / 4, f32(threshold), scan.groupsPerRow],
    workgroups: scan.workgroups,
    constants: { CLEAR: 0 },
    label: `llm_int8_outliers ${x.label}`,
  });
}

/**
 * Pass 3: per-row stats and int8 rows with the outlier columns zeroed, plus the outlier list.
 * x: [T, K] f32, flags: [K] u32 (from `llmInt8Outliers`), q: [T, paddedK(K)] i8x4, sca: [T] f32,
 * outliers: [1 + K] u32.
 */
export function llmInt8Quantize(
  r: Recorder,
  x: Tensor,
  s: LlmInt8Views,
  threshold = llmInt8Threshold,
): void {
  const [T, K] = x.shape;
  if (K % 4 !== 0) throw new Error(`llmInt8Quantize ${x.label}: K = ${K} is not a multiple of 4`);
  expectTensor("llmInt8Quantize flags", s.flags, "u32", [K]);
  expectTensor("llmInt8Quantize q", s.q, "i8x4", [T, paddedK(K)]);
  expectTensor("llmInt8Quantize sca", s.sca, "f32", [T]);
  expectTensor("llmInt8Quantize outliers", s.outliers, "u32", [1 + K]);
  checkThreshold(threshold);
  const { workgroups, groupsPerRow } = flatGrid(T, 1); // one workgroup per row
  r.dispatch("llm_int8_quantize", {
    bindings: [x, s.flags, s.q, s.sca, s.outliers],
    params: [T, K / 4, paddedK(K) / 16, f32(threshold), groupsPerRow],
    workgroups,
    label: `llm_int8_quantize ${x.label}`,
  });
}

/**
 * Pass 3½: compact copies of the first `cap` outlier columns of x and of the weights (xo, wo in `s`), which
 * the GEMM multiplies four columns a load. x: [T, K] f32, w: int8 [N, K].
 */
export function llmInt8Gather(r: Recorder, x: Tensor, s: LlmInt8Views, w: Int8LinearWeights): void {
  const [T, K] = x.shape;
  const N = w.weight.shape[0];
  const cap = s.xo.shape[1];
  expectTensor("llmInt8Gather xo", s.xo, "f32", [T, cap]);
  expectTensor("llmInt8Gather wo", s.wo, "i8x4", [N, cap]);
  expectTensor("llmInt8Gather weight", w.weight, "i8x4", [N, K]);
  const { workgroups, groupsPerRow } = flatGrid(Math.max(T, N) * 64); // 64 lanes a row
  r.dispatch("llm_int8_gather", {
    bindings: [s.outliers, x, w.weight, s.xo, s.wo],
    params: [T, N, K, cap / 4, groupsPerRow],
    workgroups,
    label: `llm_int8_gather ${w.weight.label}`,
  });
}

/**
 * Pass 4, the GEMM: out (+)= (f32(q·CBᵀ)·sca/127 + x[:, outliers]·CB[:, outliers]ᵀ)·scale + bias.
 * x: [T, K] f32 (read at the outlier columns), q/sca/outliers: from `llmInt8Quantize`, w: int8 [N, K],
 * out: [T, N] f32 (must not alias x). `epilogueColumns` (default: the cap): a count up to it is multiplied
 * here; a larger one leaves the compact columns to `llmInt8OutlierGemm` (those past the cap stay here).
 */
export function linearDp4a(
  r: Recorder,
  x: Tensor,
  s: LlmInt8Views,
  w: Int8LinearWeights,
  out: Tensor,
  opts: { accumulate?: boolean; tiling?: Dp4aTiling; epilogueColumns?: number; splits?: number } = {},
): void {
  const [T, K] = x.shape;
  const N = w.weight.shape[0];
  const what = `linearDp4a ${w.weight.label}`;
  const cap = s.xo.shape[1];
  const head = opts.epilogueColumns ?? cap;
  if (!(head % 4 === 0 && head >= 0 && head <= cap)) {
    throw new Error(`${what}: epilogueColumns ${head} must be a multiple of 4 up to the cap ${cap}`);
  }
  if (K % 4 !== 0) throw new Error(`${what}: K = ${K} is not a multiple of 4`);
  if (out.buffer === x.buffer) throw new Error(`${what}: out (${out.label}) must not alias x`);
  expectTensor(`${what} x`, x, "f32", [T, K]);
  expectTensor(`${what} q`, s.q, "i8x4", [T, paddedK(K)]);
  expectTensor(`${what} sca`, s.sca, "f32", [T]);
  expectTensor(`${what} outliers`, s.outliers, "u32", [1 + K]);
  expectTensor(`${what} weight`, w.weight, "i8x4", [N, K]);
  expectTensor(`${what} scale`, w.scale, "f32", [N]);
  if (w.bias) expectTensor(`${what} bias`, w.bias, "f32", [N]);
  expectTensor(`${what} out`, out, "f32", [T, N]);
  expectTensor(`${what} xo`, s.xo, "f32", [T, -1]);
  expectTensor(`${what} wo`, s.wo, "i8x4", [N, s.xo.shape[1]]);
  const c = opts.tiling ?? dp4aTiling(T, N, K);
  checkDp4aTiling(c);
  const grid = tileGrid(c, T, N);
  const wanted = opts.splits ?? dp4aSplits(T, N, K, c, s.parts);
  const split = wanted > 1 ? splitOf(K, c, wanted) : null;
  const partWords = split ? split.splits * grid[0] * grid[1] * dp4aTileWords(c) : 0;
  if (split && !(s.parts && partWords <= s.parts.numel)) {
    throw new Error(
      `${what}: ${split.splits} splits need ${partWords} words of parts; the scratch has ${
        s.parts?.numel ?? 0
      }`,
    );
  }
  const params = [T, N, K / 4, paddedK(K) / 4, w.bias ? 1 : 0, opts.accumulate ? 1 : 0, cap / 4, head / 4];
  const constants = { VEC: K % 16 === 0 ? 1 : 0, ...tileConstants(c) };
  // Bindings 5 and 6 are the weights seen as words and as 16-byte vectors (VEC: rows 16-byte aligned).
  const bindings = (
    q: Tensor,
    o: Tensor,
  ) => [q, s.sca, s.outliers, x, w.weight, w.weight, w.scale, w.bias ?? w.scale, o, s.xo, s.wo];
  if (!split || !s.parts) {
    r.dispatch("linear_dp4a", {
      bindings: bindings(s.q, out),
      params: [...params, 0, 1],
      workgroups: grid,
      constants: { ...constants, SPLIT: 0 },
      label: `linear_dp4a ${w.weight.label}`,
    });
    return;
  }
  // Each K slice's raw sums into the parts, then their sum and the epilogue into out.
  const parts = frontView(s.parts, [partWords]);
  r.dispatch("linear_dp4a", {
    bindings: bindings(s.q, parts),
    params: [...params, split.kslice / 4, split.splits],
    workgroups: [...grid, split.splits],
    constants: { ...constants, SPLIT: 1 },
    label: `linear_dp4a.split ${w.weight.label}`,
  });
  r.dispatch("linear_dp4a", {
    bindings: bindings(parts, out),
    params: [...params, split.kslice / 4, split.splits],
    workgroups: grid,
    constants: { ...constants, SPLIT: 2 },
    label: `linear_dp4a.sum ${w.weight.label}`,
  });
}

/**
 * The compact outlier columns (up to the count and the cap) as a tiled f32 GEMM:
 * out += scale ⊙ (xo · woᵀ), through kernels/linear_tiled.wgsl with DYNK (k bounded by the GPU-side count).
 * A count ≤ `skip` was taken whole by `linearDp4a`'s epilogue (its `epilogueColumns`): every workgroup then
 * returns at once. out: [T, N] f32.
 */
export function llmInt8OutlierGemm(
  r: Recorder,
  s: LlmInt8Views,
  w: Int8LinearWeights,
  out: Tensor,
  skip: number,
): void {
  const [T, cap] = s.xo.shape;
  const N = w.weight.shape[0];
  expectTensor("llmInt8OutlierGemm out", out, "f32", [T, N]);
  expectTensor("llmInt8OutlierGemm wo", s.wo, "i8x4", [N, cap]);
  if (!(skip % 4 === 0 && skip >= 0 && skip < cap)) {
    throw new Error(`llmInt8OutlierGemm: skip ${skip} must be a multiple of 4 below the cap ${cap}`);
  }
  recordTiled(r, {
    x: s.xo,
    weight: s.wo,
    scale: w.scale,
    bias: w.scale, // not read: has_bias 0
    out,
    params: [T, N, cap, cap / 4, 1, 0, 1, skip],
    int8: true,
    vec: true,
    dynamicK: s.outliers,
    config: tiledConfig(T, N, cap, false, r.fallbackAdapter),
    label: `llm_int8_outlier_gemm ${w.weight.label}`,
  });
}

/**
 * Up to this many outlier columns the GEMM's epilogue multiplies them itself; more go wholly to the f32
 * outlier GEMM, as the epilogue's per-thread loop costs far more than f32 tiles at many columns.
 */
export const epilogueOutlierColumns = 64;

export interface LlmInt8Options {
  /** |x| ≥ threshold makes a column an outlier (bitsandbytes' `threshold`, 6.0 in the checkpoint). */
  threshold?: number;
  /** out += x·Wᵀ + bias instead of out = …: the residual add folded into the layer. */
  accumulate?: boolean;
  /** The GEMM's tiling instead of `dp4aTiling`'s choice (tests, scripts/bench_linear_dp4a.ts). */
  tiling?: Dp4aTiling;
  /** The most outlier columns the GEMM's epilogue takes, instead of `epilogueOutlierColumns` (scripts). */
  epilogueColumns?: number;
  /** The GEMM's split count instead of `dp4aSplits`'s choice (tests, scripts); needs the scratch's parts. */
  splits?: number;
  /**
   * The scratch already holds this x's outlier flags, list and int8 rows: the call before was on the same x
   * (w1 then w3 of one input) at the same threshold, so only the weights' compact columns and the GEMM run.
   */
  rowsReady?: boolean;
}

/**
 * out (+)= LLM.int8(x, W) + bias: all four passes. x: [T, K] f32 (K % 4 == 0), w: int8 [N, K],
 * out: [T, N] f32 (must not alias x); scratch holds at least T tokens × K inputs.
 */
export function recordLinearLlmInt8(
  r: Recorder,
  x: Tensor,
  w: LinearWeights,
  out: Tensor,
  scratch: LlmInt8Scratch,
  opts: LlmInt8Options = {},
): void {
  if (w.kind !== "int8") throw new Error(`recordLinearLlmInt8 ${w.weight.label}: needs int8 weights`);
  const [T, K] = x.shape;
  expectTensor(`recordLinearLlmInt8 ${w.weight.label} x`, x, "f32", [T, K]);
  const s = scratch.views(T, K, w.weight.shape[0]);
  const threshold = opts.threshold ?? llmInt8Threshold;
  if (!opts.rowsReady) {
    llmInt8Outliers(r, x, s.flags, threshold);
    llmInt8Quantize(r, x, s, threshold);
  }
  llmInt8Gather(r, x, s, w);
  const head = Math.min(opts.epilogueColumns ?? epilogueOutlierColumns, s.xo.shape[1]);
  linearDp4a(r, x, s, w, out, { ...opts, epilogueColumns: head });
  if (head < s.xo.shape[1]) llmInt8OutlierGemm(r, s, w, out, head);
}

/**
 * Standalone `recordLinearLlmInt8` (tests, scripts): allocates out (unless given) and a scratch for this
 * shape, records the passes into one recorder and submits. The caller destroys both.
 */
export function linearLlmInt8(
  gpu: Gpu,
  x: Tensor,
  w: LinearWeights,
  opts: LlmInt8Options & { out?: Tensor; cap?: number } = {},
): { out: Tensor; scratch: LlmInt8Scratch } {
  const [T, K] = x.shape;
  const N = w.weight.shape[0];
  const out = opts.out ?? gpu.createTensor(`${w.weight.label}.llm_int8.out`, "f32", [T, N]);
  const scratch = new LlmInt8Scratch(gpu, `${w.weight.label}.llm_int8`, T, K, N, opts.cap);
  const r = gpu.recorder(`linearLlmInt8 ${w.weight.label}`);
  recordLinearLlmInt8(r, x, w, out, scratch, opts);
  r.submit();
  return { out, scratch };
}
