import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { expectKvCaches, kvKernel } from "./kv_cache_storage.ts";
import { flatGrid } from "./grid.ts";

export interface QkvRopeCacheShape {
  batch: number; // B sequences
  tokens: number; // T new tokens per sequence, at cache positions startPos … startPos+T−1
  startPos: number;
  numHeads: number; // H query heads
  numKvHeads: number; // Hkv key/value heads (H % Hkv == 0)
  headDim: number; // Dh (even)
}

/**
 * The attention prologue of an InternLM2 layer in one dispatch (REFERENCE §7): what splitLmQkv, rope on q,
 * rope on k and kvWrite of k and v do, with the same f32 operations.
 * qkv: [B·T, Hkv·(G+2)·Dh] f32 (per kv group h: G query heads, the key, the value); positions: [B·T] i32
 * (each < P); cos, sin: [P, Dh/2] f32 from ropeTables → q: [B·T, H·Dh] f32 (rotated), and rows
 * startPos … startPos+T−1 of kCache (rotated keys) and vCache (values): [B, S, Hkv·Dh] f32, or bf16x2
 * (rounded to nearest even; Dh % 4 == 0).
 */
export function qkvRopeCache(
  r: Recorder,
  qkv: Tensor,
  positions: Tensor,
  cos: Tensor,
  sin: Tensor,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  shape: QkvRopeCacheShape,
): void {
  const { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh } = shape;
  if (!(H > 0 && Hkv > 0 && H % Hkv === 0)) {
    throw new Error(`qkvRopeCache: ${H} query heads do not split into ${Hkv} kv groups`);
  }
  const half = Dh / 2;
  if (!Number.isInteger(half) || half < 1) throw new Error(`qkvRopeCache: head dim ${Dh} must be even`);
  const G = H / Hkv;
  const rows = B * T;
  const S = kCache.shape[1];
  const P = cos.shape[0];
  expectTensor("qkvRopeCache qkv", qkv, "f32", [rows, Hkv * (G + 2) * Dh]);
  expectTensor("qkvRopeCache positions", positions, "i32", [rows]);
  expectTensor("qkvRopeCache cos", cos, "f32", [P, half]);
  expectTensor("qkvRopeCache sin", sin, "f32", [P, half]);
  expectTensor("qkvRopeCache q", q, "f32", [rows, H * Dh]);
  expectKvCaches("qkvRopeCache", kCache, vCache, [B, S, Hkv * Dh]);
  if (kCache.dtype === "bf16x2" && Dh % 4 !== 0) {
    throw new Error(`qkvRopeCache: head dim ${Dh} must be a multiple of 4 for a bf16 cache`);
  }
  if (!Number.isInteger(startPos) || startPos < 0 || startPos + T > S) {
    throw new Error(
      `qkvRopeCache: positions ${startPos}…${startPos + T - 1} do not fit a cache of ${S} positions`,
    );
  }
  const n = rows * Hkv * (G + 2) * half;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch(kvKernel("qkv_rope_cache", kCache), {
    bindings: [qkv, positions, cos, sin, q, kCache, vCache],
    params: [n, half, G, Hkv, T, S, startPos, P, groupsPerRow],
    workgroups,
    label: `qkv_rope_cache ${kCache.label}`,
  });
}
