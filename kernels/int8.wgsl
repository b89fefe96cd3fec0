// Not a kernel: the exact int8 → f32 widening shared by the int8 kernels, pasted where they say
// `// #include int8` (src/gpu/kernel_source.ts).
// Each byte of w, biased to unsigned by the xor (b + 128), becomes the low mantissa bits of 2²³, and
// subtracting 2²³ + 128 leaves the signed value exactly — without the int → float instruction, which runs at
// a quarter rate on NVIDIA and capped the bandwidth-bound matrix-vector kernels.
fn i8x4(w: u32) -> vec4<f32> {
  let u = vec4<u32>(w ^ 0x80808080u) >> vec4<u32>(0u, 8u, 16u, 24u);
  return bitcast<vec4<f32>>((u & vec4<u32>(0xFFu)) | vec4<u32>(0x4B000000u)) - vec4<f32>(8388736.0);
}

// The same four values with bytes 1 and 3 taken 256× (b0, 256·b1, b2, 256·b3), for products whose x side
// carries I8X4_SCALED_X: each byte is masked where it lies (bytes 2 and 3 after one shift of the word), so
// the bias xor merges into the mask's instruction — 5 integer operations a word where i8x4 takes 8. The
// integer work bounds the one-token products (PERF.md v89). Exact: 256·b < 2²³ lies in the mantissa, and
// x·2⁻⁸ · 256·b is the same real number as x·b, so a chain of multiply-adds gives i8x4's sums bit for bit
// (x·2⁻⁸ is exact where it is a normal number, |x| > 2⁻¹¹⁸).
const I8X4_SCALED_X = vec4<f32>(1.0, 0.00390625, 1.0, 0.00390625);
fn i8x4_scaled(w: u32) -> vec4<f32> {
  let h = w >> 16u;
  let m = vec4<u32>(w & 0xFFu, w & 0xFF00u, h & 0xFFu, h & 0xFF00u) ^
    vec4<u32>(0x4B000080u, 0x4B008000u, 0x4B000080u, 0x4B008000u);
  return bitcast<vec4<f32>>(m) - vec4<f32>(8388736.0, 8421376.0, 8388736.0, 8421376.0);
}
