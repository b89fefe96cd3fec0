import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

/**
 * cos/sin tables [maxPositions, Dh/2] f32 of InternLM2RotaryEmbedding (REFERENCE §7), computed as the
 * reference does in float32: inv_freq[i] = 1 / θ^(2i/Dh), freqs = t·inv_freq (one f32 product), then
 * cos/sin rounded to f32. (The reference concatenates freqs twice; the kernel reads one half for both.)
 *
 * Dynamic NTK scaling (rope_scaling {type: dynamic, factor 2}) changes nothing up to
 * max_position_embeddings = 32768. Past it the reference re-derives the base from the current length:
 * pass `base = dynamicNtkBase(θ, Dh, length)` to rebuild the tables (already-cached keys keep their old
 * rotation in the reference too).
 */
export function ropeTables(
  theta: number,
  headDim: number,
  maxPositions: number,
  base: number = theta,
): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  if (!Number.isInteger(half) || half < 1) throw new Error(`ropeTables: head dim ${headDim} must be even`);
  const b = Math.fround(base);
  const invFreq = new Float32Array(half);
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), each step rounded to float32.
  for (let i = 0; i < half; i++) {
    invFreq[i] = Math.fround(1 / Math.fround(b ** Math.fround((2 * i) / headDim)));
  }
  const cos = new Float32Array(maxPositions * half), sin = new Float32Array(maxPositions * half);
  for (let t = 0; t < maxPositions; t++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(t * invFreq[i]);
      cos[t * half + i] = Math.cos(f);
      sin[t * half + i] = Math.sin(f);
    }
  }
  return { cos, sin };
}

/** The rotary tables on the GPU: cos and sin [maxPositions, Dh/2] (prompt passes), both by row [maxPositions, Dh]. */
export interface RopeTensors {
  ropeCos: Tensor;
  ropeSin: Tensor;
  ropeCosSin: Tensor;
}

/** Computes `ropeTables(theta, headDim, maxPositions)` and uploads it in the layouts the kernels read. */
export function uploadRopeTables(
  gpu: Gpu,
  theta: number,
  headDim: number,
  maxPositions: number,
): RopeTensors {
  const tables = ropeTables(theta, headDim, maxPositions);
  const half = headDim / 2;
  return {
    ropeCos: gpu.uploadTensor("lm.rope_cos", "f32", [maxPositions, half], tables.cos),
    ropeSin: gpu.uploadTensor("lm.rope_sin", "f32", [maxPositions, half], tables.sin),
    ropeCosSin: gpu.uploadTensor(
      "lm.rope_cos_sin",
      "f32",
      [maxPositions, headDim],
      ropeCosSinRows(tables, headDim),
    ),
  };
}

/**
 * The tables as one [maxPositions, Dh] f32 array, row t = cos[t, ·] then sin[t, ·]: the layout the fused
 * decode attention reads (attentionDecodeFromQkv; one binding instead of two).
 */
export function ropeCosSinRows(
  tables: { cos: Float32Array; sin: Float32Array },
  headDim: number,
): Float32Array {
  const half = headDim / 2;
  const positions = tables.cos.length / half;
  const out = new Float32Array(positions * headDim);
  for (let t = 0; t < positions; t++) {
    out.set(tables.cos.subarray(t * half, (t + 1) * half), t * headDim);
    out.set(tables.sin.subarray(t * half, (t + 1) * half), t * headDim + half);
  }
  return out;
}

/**
 * The base InternLM2DynamicNTKScalingRotaryEmbedding uses for a context of `seqLen` positions:
 * θ·(factor·L/maxPositionEmbeddings − (factor − 1))^(Dh/(Dh−2)) when L exceeds maxPositionEmbeddings, else θ.
 */
export function dynamicNtkBase(
  theta: number,
  headDim: number,
  seqLen: number,
  maxPositionEmbeddings = 32768,
  factor = 2,
): number {
  if (seqLen <= maxPositionEmbeddings) return theta;
  return theta * ((factor * seqLen) / maxPositionEmbeddings - (factor - 1)) ** (headDim / (headDim - 2));
}

export interface RopeShape {
  numHeads: number; // nH heads in x (query or key/value heads)
  headDim: number; // Dh (even)
}

/**
 * Rotates x in place: x: [T, nH·Dh] f32, positions: [T] i32 (each < P), cos, sin: [P, Dh/2] f32.
 */
export function rope(
  r: Recorder,
  x: Tensor,
  positions: Tensor,
  cos: Tensor,
  sin: Tensor,
  shape: RopeShape,
): void {
  const { numHeads: nH, headDim: Dh } = shape;
  const half = Dh / 2;
  if (!Number.isInteger(half) || half < 1) throw new Error(`rope: head dim ${Dh} must be even`);
  const T = x.shape[0];
  const P = cos.shape[0];
  expectTensor("rope x", x, "f32", [T, nH * Dh]);
  expectTensor("rope positions", positions, "i32", [T]);
  expectTensor("rope cos", cos, "f32", [P, half]);
  expectTensor("rope sin", sin, "f32", [P, half]);
  const n = T * nH * half;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("rope", {
    bindings: [x, positions, cos, sin],
    params: [n, half, P, nH, groupsPerRow],
    workgroups,
    label: `rope ${x.label}`,
  });
}
