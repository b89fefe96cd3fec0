// Not a kernel: the exact int8 → f32 widening shared by the int8 kernels, pasted where they say
// `// #include int8` (src/gpu/kernel_source.ts).
// Each byte of w, biased to unsigned by the xor (b + 128), becomes the low mantissa bits of 2²³, and
// subtracting 2²³ + 128 leaves the signed value exactly — without the int → float instruction, which runs at
// a quarter rate on NVIDIA and capped the bandwidth-bound matrix-vector kernels.
fn i8x4(w: u32) -> vec4<f32> {
  let u = vec4<u32>(w ^ 0x80808080u) >> vec4<u32>(0u, 8u, 16u, 24u);
  return bitcast<vec4<f32>>((u & vec4<u32>(0xFFu)) | vec4<u32>(0x4B000000u)) - vec4<f32>(8388736.0);
}
