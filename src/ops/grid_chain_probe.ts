import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { fillRandom } from "./fill_random.ts";

// Experiment (kernels/grid_chain_probe.wgsl, scripts/bench_grid_chain.ts, PERF.md v51), not used by the model:
// a decode step's int8 products, one dispatch each or all in one dispatch with a grid-wide barrier between.

/** Widths of the chain: InternLM2's hidden h, wqkv's qkv outputs, the feed-forward's ff. */
export interface GridChainShapes {
  h: number;
  qkv: number;
  ff: number;
  layers: number;
}

/** Floats of one activation region (a product's input or output). */
export const gridChainRegionFloats = 32768;

/** The four weight matrices (reused by every layer), their scales and the activation regions. */
export interface GridChain {
  shapes: GridChainShapes;
  /** wqkv [qkv, h], wo [h, h], wgu [2·ff, h] (gate rows, then up rows), w2 [h, ff], int8. */
  weights: [Tensor, Tensor, Tensor, Tensor];
  /** [qkv + h + 2·ff + h] f32, the kinds' rows in that order. */
  scale: Tensor;
  scales: Float32Array;
  /** [4·layers + 1, 32768] f32: region p is product p's input, region 0 the step's (x0). */
  act: Tensor;
  x0: Float32Array;
  count: Tensor; // [2 + 4·layers] i32: the barrier's arrivals, each product's tickets (zeroed by recordGridChain)
  fault: Tensor; // [4] i32: [0] a spin gave up, [1] how many workgroups it still waited for
}

/**
 * Tiling and mode: SYNC 1 = one dispatch with grid-wide barriers, PF = prefetch across them (1–3), DYN 1 =
 * blocks of rows handed out by a ticket counter instead of by workgroup index.
 */
export interface GridChainVariant {
  sync: 0 | 1;
  pf: 0 | 1 | 2 | 3;
  dyn?: 0 | 1;
  /**
   * Timing only, wrong results: the weights streamed without x or the products (1), as flat arrays (2), or as 1
   * without the RMSNorm's sums (3).
   */
  nomath?: 0 | 1 | 2 | 3;
  R: 2 | 4;
  LANES: 8 | 16 | 32 | 64 | 128 | 256;
  U: 1 | 2 | 4;
  /** Persistent workgroups; with SYNC 1 every one must be resident at once. */
  nwg: number;
}

/** (rows, K, gate·up, RMS-normalised input, first scale) of product kind 0–3. */
export function gridChainKind(s: GridChainShapes, kind: number): [number, number, boolean, boolean, number] {
  const kinds: [number, number, boolean, boolean, number][] = [
    [s.qkv, s.h, false, true, 0],
    [s.h, s.h, false, false, s.qkv],
    [s.ff, s.h, true, true, s.qkv + s.h],
    [s.h, s.ff, false, false, s.qkv + s.h + 2 * s.ff],
  ];
  return kinds[kind];
}

/**
 * Allocates the chain, fills its weights on the GPU (int8 from `seed`), its scales so that a unit-rms input
 * gives unit-variance outputs, and region 0; records the fills into `r`.
 */
export function createGridChain(gpu: Gpu, r: Recorder, shapes: GridChainShapes, seed: number): GridChain {
  const { h, qkv, ff, layers } = shapes;
  if (!(h % 16 === 0 && ff % 16 === 0 && h >= 16 && ff >= 16 && qkv >= h && layers >= 1)) {
    throw new Error(`grid chain: h=${h}, ff=${ff} multiples of 16, qkv=${qkv} ≥ h, ${layers} layers ≥ 1`);
  }
  if (!(qkv <= gridChainRegionFloats && ff <= gridChainRegionFloats)) {
    throw new Error(`grid chain: qkv=${qkv} and ff=${ff} must fit a region of ${gridChainRegionFloats}`);
  }
  const weights: [Tensor, Tensor, Tensor, Tensor] = [
    gpu.createTensor("chain.wqkv", "i8x4", [qkv, h]),
    gpu.createTensor("chain.wo", "i8x4", [h, h]),
    gpu.createTensor("chain.wgu", "i8x4", [2 * ff, h]),
    gpu.createTensor("chain.w2", "i8x4", [h, ff]),
  ];
  weights.forEach((w, i) => fillRandom(r, w, { seed: seed + i }));
  const scales = new Float32Array(qkv + h + 2 * ff + h);
  let state = seed >>> 0;
  const rand = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  let at = 0;
  for (const [n, K] of [[qkv, h], [h, h], [2 * ff, h], [h, ff]]) {
    // int8 uniform in ±127 has variance 127²/3
    for (let i = 0; i < n; i++) scales[at++] = (0.5 + rand()) / (127 * Math.sqrt(K / 3));
  }
  const act = gpu.createTensor("chain.act", "f32", [4 * layers + 1, gridChainRegionFloats]);
  const x0 = Float32Array.from({ length: h }, () => 4 * rand() - 2);
  gpu.writeTensor(act, x0);
  return {
    shapes,
    weights,
    scale: gpu.uploadTensor("chain.scale", "f32", [scales.length], scales),
    scales,
    act,
    x0,
    count: gpu.createTensor("chain.count", "i32", [2 + 4 * layers]),
    fault: gpu.createTensor("chain.fault", "i32", [4]),
  };
}

/** Zeroes every product's output region, so that a run that skips a product cannot pass for one that did not. */
export function clearGridChainOutputs(gpu: Gpu, c: GridChain): void {
  const zeros = new Float32Array(c.act.shape[0] * gridChainRegionFloats);
  zeros.set(c.x0);
  gpu.writeTensor(c.act, zeros);
}

/** Arrivals the barrier counts in one SYNC 1 step: every workgroup at every product but the last. */
export function gridChainArrivals(c: GridChain, v: GridChainVariant): number {
  return v.sync ? (4 * c.shapes.layers - 1) * v.nwg : 0;
}

/** The first n values of activation region i of `act` (a readback of GridChain.act). */
export function gridChainRegion(act: Float32Array, i: number, n: number): Float32Array {
  return act.subarray(i * gridChainRegionFloats, i * gridChainRegionFloats + n);
}

export function destroyGridChain(c: GridChain): void {
  for (const t of [...c.weights, c.scale, c.act, c.count, c.fault]) t.buffer.destroy();
}

/**
 * One step's products (4 per layer; region p → region p + 1): one dispatch each (SYNC 0) or one for all,
 * after zeroing the barrier's count. `resetFault`: zero the fault flag first. `spinLimit`: loads of the count
 * a waiting workgroup makes before it gives up and sets the flag.
 */
export function recordGridChain(
  r: Recorder,
  c: GridChain,
  v: GridChainVariant,
  opts: { kernel?: string; spinLimit?: number; resetFault?: boolean } = {},
): void {
  const { h, qkv, ff, layers } = c.shapes;
  if (!(v.R === 2 || v.R === 4) || ![8, 16, 32, 64, 128, 256].includes(v.LANES) || ![1, 2, 4].includes(v.U)) {
    throw new Error(`grid chain: R ${v.R} (2, 4), LANES ${v.LANES} (8 … 256), U ${v.U} (1, 2, 4)`);
  }
  if (!(Number.isInteger(v.nwg) && v.nwg >= 1)) throw new Error(`grid chain: ${v.nwg} workgroups`);
  if (v.dyn && v.pf) throw new Error("grid chain: a prefetch assumes the static blocks (not with DYN)");
  if (opts.resetFault) fillRandom(r, c.fault, { seed: 1, lo: 0, hi: 1 }); // zeros
  fillRandom(r, c.count, { seed: 1, lo: 0, hi: 1 });
  const products = 4 * layers;
  const launch = (first: number, end: number) =>
    r.dispatch(opts.kernel ?? "grid_chain_probe", {
      bindings: [...c.weights, c.scale, c.act, c.count, c.fault],
      params: [first, end, opts.spinLimit ?? 1 << 20, h, qkv, ff],
      workgroups: v.nwg,
      constants: {
        SYNC: v.sync,
        PF: v.pf,
        U: v.U,
        R: v.R,
        LANES: v.LANES,
        DYN: v.dyn ?? 0,
        NOMATH: v.nomath ?? 0,
      },
      label: `grid_chain_probe ${first}…${end - 1}`,
    });
  if (v.sync) launch(0, products);
  else for (let p = 0; p < products; p++) launch(p, p + 1);
}

/** CPU reference of product `kind` on `input` (its K values) with that kind's int8 rows `w`, in f64. */
export function gridChainProductRef(
  s: GridChainShapes,
  scales: Float32Array,
  kind: number,
  input: Float32Array,
  w: Int8Array,
): Float64Array {
  const [N, K, glu, normed, at] = gridChainKind(s, kind);
  let inv = 1;
  if (normed) {
    let sq = 0;
    for (let k = 0; k < K; k++) sq += input[k] * input[k];
    inv = 1 / Math.sqrt(sq / K + 1e-6);
  }
  const dotRow = (n: number) => {
    let sum = 0;
    for (let k = 0; k < K; k++) sum += input[k] * w[n * K + k];
    return sum;
  };
  const y = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const a = scales[at + n] * inv * dotRow(n);
    y[n] = glu ? a / (1 + Math.exp(-a)) * (scales[at + N + n] * inv * dotRow(N + n)) : a;
  }
  return y;
}
