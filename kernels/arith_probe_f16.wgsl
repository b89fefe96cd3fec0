// The f16 twin of arith_probe.wgsl (needs shader-f16, so a file of its own): 8 independent vec4<f16> FMA
// chains per thread, 32 multiply-adds per round, as NVIDIA's packed HFMA2 would run them.
//
// VARIANT 1: 16 independent vec2<f16> chains (the HFMA2 shape itself, 32 multiply-adds a round);
// VARIANT 2: as 0 with a product and a sum instead of fma (whether the driver fuses them into HFMA2).
//
// Bindings: 1 seed [4] u32, 2 out [threads] u32. Params: iters. Grid: any number of workgroups of 256.
// Features: shader-f16.
enable f16;

struct Params { iters: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override VARIANT: u32 = 0u;

fn pairs(id: u32, s: u32) -> u32 {
  let b = vec2<f16>(f16(1.0) + f16(s & 7u) * f16(0.0009765625));
  var a0 = vec2<f16>(f16(s & 15u) * f16(0.0625));
  var a1 = a0 + f16(1.0);
  var a2 = a0 + f16(2.0);
  var a3 = a0 + f16(3.0);
  var a4 = a0 + f16(4.0);
  var a5 = a0 + f16(5.0);
  var a6 = a0 + f16(6.0);
  var a7 = a0 + f16(7.0);
  var a8 = a0 - f16(1.0);
  var a9 = a0 - f16(2.0);
  var a10 = a0 - f16(3.0);
  var a11 = a0 - f16(4.0);
  var a12 = a0 - f16(5.0);
  var a13 = a0 - f16(6.0);
  var a14 = a0 - f16(7.0);
  var a15 = a0 - f16(8.0);
  for (var i = 0u; i < p.iters; i++) {
    a0 = fma(a0, b, -b);
    a1 = fma(a1, b, -b);
    a2 = fma(a2, b, -b);
    a3 = fma(a3, b, -b);
    a4 = fma(a4, b, -b);
    a5 = fma(a5, b, -b);
    a6 = fma(a6, b, -b);
    a7 = fma(a7, b, -b);
    a8 = fma(a8, b, -b);
    a9 = fma(a9, b, -b);
    a10 = fma(a10, b, -b);
    a11 = fma(a11, b, -b);
    a12 = fma(a12, b, -b);
    a13 = fma(a13, b, -b);
    a14 = fma(a14, b, -b);
    a15 = fma(a15, b, -b);
  }
  let t = ((a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11) + (a12 + a13) + (a14 + a15));
  return pack2x16float(vec2<f32>(t));
}

fn mix_fma(a: vec4<f16>, b: vec4<f16>) -> vec4<f16> {
  if (VARIANT == 2u) { return a * b - b; }
  return fma(a, b, -b);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 256u;
  let s = seed[0] ^ id;
  if (VARIANT == 1u) {
    out[id] = pairs(id, s);
    return;
  }
  let b = vec4<f16>(f16(1.0) + f16(s & 7u) * f16(0.0009765625));
  var a0 = vec4<f16>(f16(s & 15u) * f16(0.0625));
  var a1 = a0 + f16(1.0);
  var a2 = a0 + f16(2.0);
  var a3 = a0 + f16(3.0);
  var a4 = a0 + f16(4.0);
  var a5 = a0 + f16(5.0);
  var a6 = a0 + f16(6.0);
  var a7 = a0 + f16(7.0);
  for (var i = 0u; i < p.iters; i++) {
    a0 = mix_fma(a0, b);
    a1 = mix_fma(a1, b);
    a2 = mix_fma(a2, b);
    a3 = mix_fma(a3, b);
    a4 = mix_fma(a4, b);
    a5 = mix_fma(a5, b);
    a6 = mix_fma(a6, b);
    a7 = mix_fma(a7, b);
  }
  let t = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
  out[id] = pack2x16float(vec2<f32>(f32(t.x + t.y), f32(t.z + t.w)));
}
