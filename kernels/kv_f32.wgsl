// The LM KV cache's storage, f32 (the default): pasted where a kernel that reads or writes the cache says
// `// #include kv_f32` (src/gpu/kernel_source.ts); the kernel name `NAME+kv_bf16` pastes kernels/kv_bf16.wgsl
// there instead, with the same names. A kernel binds k_cache / v_cache as array<KvVec4> (vec4 loads) or
// array<KvWord> and converts with these functions, which are the identity here.
alias KvWord = f32; // one element
alias KvVec4 = vec4f; // four consecutive elements
const KV_PER_WORD = 1u;

fn kv_widen4(x: vec4f) -> vec4f {
  return x;
}

fn kv_narrow4(x: vec4f) -> vec4f {
  return x;
}

// The word holding element x (and, where a word holds two, the element after it: not here).
fn kv_narrow2(x: f32, next: f32) -> f32 {
  return x;
}
