// Not a kernel: the exact int8 → f32 widenings shared by the int8 kernels, pasted where they say
// `// #include int8` (src/gpu/kernel_source.ts). Both avoid the int → float instruction, which runs at a
// quarter rate on NVIDIA and capped the bandwidth-bound matrix-vector kernels.

// Each byte of w, biased to unsigned by the xor (b + 128), becomes the low mantissa bits of 2²³, and
// subtracting 2²³ + 128 leaves the signed value exactly: integer work (an xor, three shifts, four masks and
// ors) and four float subtractions. For the tiled GEMMs, whose float multiply-adds are the limit.
fn i8x4(w: u32) -> vec4<f32> {
  let u = vec4<u32>(w ^ 0x80808080u) >> vec4<u32>(0u, 8u, 16u, 24u);
  return bitcast<vec4<f32>>((u & vec4<u32>(0xFFu)) | vec4<u32>(0x4B000000u)) - vec4<f32>(8388736.0);
}

// The same values with three integer operations: bytes 0 and 2 of w, and (after one shift) bytes 1 and 3,
// biased by the xor become the low mantissa bits of two half floats of value 1024 (exponent 0x64 in the
// xor's constant, so mask, bias and exponent are one operation); unpack2x16float widens each pair, and
// subtracting 1024 + 128 leaves the signed values exactly (1024 + 255 < 2048: the half floats' step there is
// 1). For the matrix-vector kernels, whose integer work is the limit: a one-row step on an H200 7.43 →
// 7.26 ms (PERF.md v90); the tiled GEMMs lost with it (a weight-only 7-tile first token 4.07 → 4.37 s).
fn i8x4_halves(w: u32) -> vec4<f32> {
  let even = unpack2x16float((w & 0x00FF00FFu) ^ 0x64806480u) - vec2<f32>(1152.0);
  let odd = unpack2x16float(((w >> 8u) & 0x00FF00FFu) ^ 0x64806480u) - vec2<f32>(1152.0);
  return vec4<f32>(even.x, odd.x, even.y, odd.y);
}

// (b + 128)·2⁻²⁴ for each int8 b of w, exact, with no subtraction: each byte, biased by the xor, is the
// mantissa of a subnormal half float (exponent bits 0, so no implicit 1024 under it): one mask-and-xor a
// pair, and a shift for bytes 1 and 3. At one token the matrix-vector kernels multiply these and take
// I8_BIAS·Σx of the word off once for all their rows (BIASED), instead of a subtraction a weight; the sums
// then carry a factor 2⁻²⁴ (I8_UNSCALE). The sums' rounding error scales with the bias in steps of b: 128
// here, the least an unsigned byte allows, where a normal half float's bits 2–9 gave 384 (v93: three to
// four times the normalised error, scripts/probe_biased_precision.ts) and bits 0–7 1152; and I8_BIAS is a
// power of two, so −I8_BIAS·Σx rounds only in Σx. Needs unpack2x16float to keep subnormal halves, which a
// driver may flush (Gpu.halfSubnormals probes it; llvmpipe and NVIDIA keep them). H200 decode 7.21 → 7.09
// ms (PERF.md v94).
const I8_BIAS = 7.62939453125e-6; // 2⁻¹⁷ = 128·2⁻²⁴
const I8_UNSCALE = 16777216.0; // 2²⁴
fn i8x4_biased(w: u32) -> vec4<f32> {
  let even = unpack2x16float((w & 0x00FF00FFu) ^ 0x00800080u);
  let odd = unpack2x16float(((w >> 8u) & 0x00FF00FFu) ^ 0x00800080u);
  return vec4<f32>(even.x, odd.x, even.y, odd.y);
}

// Where a word's chains of multiply-adds over i8x4_biased weights start, relative to the sums: −I8_BIAS·Σ of
// the word's four x (as they meet the weights).
fn i8_bias_of(x: vec4<f32>) -> f32 {
  return -I8_BIAS * ((x.x + x.y) + (x.z + x.w));
}
