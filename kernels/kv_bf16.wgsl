// The LM KV cache's storage in bfloat16 (KV_CACHE_DTYPE=bf16): two elements to a u32 word, element 2i in the
// low half (bf16x2, src/gpu/tensor.ts), pasted by the kernel name `NAME+kv_bf16` where the kernel says
// `// #include kv_f32` (src/gpu/kernel_source.ts). Same names as kernels/kv_f32.wgsl. The math stays f32:
// values are widened when read (exact: bf16 is the top half of an f32) and rounded to the nearest bf16, ties
// to even, when written (kernels/fill_random.wgsl's rounding; overflow becomes ±Inf, NaN stays NaN).
alias KvWord = u32; // two elements
alias KvVec4 = vec2<u32>; // four consecutive elements: one 8-byte load
const KV_PER_WORD = 2u;

fn kv_widen4(w: vec2<u32>) -> vec4f {
  return vec4f(
    bitcast<f32>(w.x << 16u),
    bitcast<f32>(w.x & 0xffff0000u),
    bitcast<f32>(w.y << 16u),
    bitcast<f32>(w.y & 0xffff0000u),
  );
}

// f32 → bf16 bits, round to nearest even; a NaN keeps its sign and top payload bits, made quiet.
fn kv_bf16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let nan = (b & 0x7fffffffu) > 0x7f800000u;
  return select((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u, (b >> 16u) | 0x40u, nan);
}

fn kv_narrow4(x: vec4f) -> vec2<u32> {
  return vec2<u32>(kv_bf16(x.x) | (kv_bf16(x.y) << 16u), kv_bf16(x.z) | (kv_bf16(x.w) << 16u));
}

// The word holding element x (low half) and the element after it (high half).
fn kv_narrow2(x: f32, next: f32) -> u32 {
  return kv_bf16(x) | (kv_bf16(next) << 16u);
}
