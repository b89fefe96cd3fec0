// Throughput probe for scripts/bench_arith.ts (not used by the model): how many multiply-adds per second
// the GPU does through WGSL's f32 FMA (what every matrix kernel uses) and through dot4I8Packed (four int8
// products summed into an i32: whether int8 activations could speed up prefill and the ViT depends on it
// being a native instruction, not a polyfill of shifts and multiplies).
// Each thread runs ITERS rounds over 8 independent accumulators (enough to hide the pipeline latency) and
// writes one value, so nothing is dead code. Multiply-adds per thread and round: OP 0: 8 vec4 FMAs = 32;
// OP 1: 8 dot4I8Packed = 32.
//
// Bindings: 1 seed [4] u32 (any values), 2 out [threads] u32.
// Params:   iters.
// Overrides: OP (0 f32 FMA, 1 dot4I8Packed).
// Grid:     any number of workgroups of 256.
// Features: packed_4x8_integer_dot_product (core WGSL language feature).
struct Params { iters: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override OP: u32 = 0u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 256u;
  let s = seed[0] ^ id;
  if (OP == 0u) {
    let b = vec4f(bitcast<f32>(0x3f800001u ^ (s & 7u)));
    var a0 = vec4f(f32(s & 255u) * 1e-3);
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    var a4 = a0 + 4.0;
    var a5 = a0 + 5.0;
    var a6 = a0 + 6.0;
    var a7 = a0 + 7.0;
    for (var i = 0u; i < p.iters; i++) {
      a0 = fma(a0, b, b);
      a1 = fma(a1, b, b);
      a2 = fma(a2, b, b);
      a3 = fma(a3, b, b);
      a4 = fma(a4, b, b);
      a5 = fma(a5, b, b);
      a6 = fma(a6, b, b);
      a7 = fma(a7, b, b);
    }
    let t = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
    out[id] = bitcast<u32>(t.x + t.y + t.z + t.w);
  } else {
    let w = seed[1] ^ s;
    var c0 = i32(s);
    var c1 = c0 + 1;
    var c2 = c0 + 2;
    var c3 = c0 + 3;
    var c4 = c0 + 4;
    var c5 = c0 + 5;
    var c6 = c0 + 6;
    var c7 = c0 + 7;
    for (var i = 0u; i < p.iters; i++) {
      // The packed operand depends on the accumulator, so the compiler cannot hoist the products.
      c0 += dot4I8Packed(u32(c0), w);
      c1 += dot4I8Packed(u32(c1), w);
      c2 += dot4I8Packed(u32(c2), w);
      c3 += dot4I8Packed(u32(c3), w);
      c4 += dot4I8Packed(u32(c4), w);
      c5 += dot4I8Packed(u32(c5), w);
      c6 += dot4I8Packed(u32(c6), w);
      c7 += dot4I8Packed(u32(c7), w);
    }
    out[id] = u32((c0 ^ c1) ^ (c2 ^ c3) ^ (c4 ^ c5) ^ (c6 ^ c7));
  }
}
