import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { flatGrid } from "./grid.ts";

export interface KvWriteShape {
  batch: number; // B sequences
  tokens: number; // T new tokens per sequence
  startPos: number; // cache position of the first new token (same for every sequence)
}

/** cache[b, startPos + t] = kv[b·T + t]. kv: [B·T, W] f32, cache: [B, S, W] f32 (W = Hkv·Dh). */
export function kvWrite(r: Recorder, kv: Tensor, cache: Tensor, shape: KvWriteShape): void {
  const { batch: B, tokens: T, startPos } = shape;
  const [, S, W] = cache.shape;
  expectTensor("kvWrite cache", cache, "f32", [B, S, W]);
  expectTensor("kvWrite kv", kv, "f32", [B * T, W]);
  if (!Number.isInteger(startPos) || startPos < 0 || startPos + T > S) {
    throw new Error(
      `kvWrite: positions ${startPos}…${startPos + T - 1} do not fit a cache of ${S} positions`,
    );
  }
  const n = B * T * W;
  const { workgroups, groupsPerRow } = flatGrid(n);
  r.dispatch("kv_write", {
    bindings: [kv, cache],
    params: [n, W, T, S, startPos, groupsPerRow],
    workgroups,
    label: `kv_write ${cache.label}`,
  });
}
