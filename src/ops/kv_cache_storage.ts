import { expectTensor, type Tensor } from "../gpu/tensor.ts";

/**
 * How the launchers of the kernels that read or write the LM KV cache take its two storage dtypes
 * (KV_CACHE_DTYPE, src/model/kv_cache.ts): f32, or bf16 two to a u32 word (`bf16x2`, element 2i in the low
 * half). The kernels include kernels/kv_f32.wgsl; for a bf16 cache they run as the variant `NAME+kv_bf16`,
 * which pastes kernels/kv_bf16.wgsl there (src/gpu/kernel_source.ts): a module and pipeline of its own.
 */

/** Throws unless kCache and vCache are both f32 or both bf16x2 with exactly `shape`. */
export function expectKvCaches(what: string, kCache: Tensor, vCache: Tensor, shape: readonly number[]): void {
  const dtype = kCache.dtype === "bf16x2" ? "bf16x2" : "f32";
  expectTensor(`${what} kCache`, kCache, dtype, shape);
  expectTensor(`${what} vCache`, vCache, dtype, shape);
}

/** The kernel `name` as it reads and writes caches of kCache's dtype. */
export function kvKernel(name: string, kCache: Tensor): string {
  return kCache.dtype === "bf16x2" ? `${name}+kv_bf16` : name;
}
