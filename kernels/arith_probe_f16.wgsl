// The f16 twin of arith_probe.wgsl (needs shader-f16, so a file of its own): 8 independent vec4<f16> FMA
// chains per thread, 32 multiply-adds per round, as NVIDIA's packed HFMA2 would run them.
//
// MUL_ADD: a product and a sum instead of fma (whether the driver fuses them into HFMA2). (16 vec2<f16>
// chains, the HFMA2 shape itself, measured the same: 1.22× f32 on an H100; commit d257ebc has that probe.)
//
// Bindings: 1 seed [4] u32, 2 out [threads] u32. Params: iters. Grid: any number of workgroups of 256.
// Features: shader-f16.
enable f16;

struct Params { iters: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override MUL_ADD: bool = false;

fn mix_fma(a: vec4<f16>, b: vec4<f16>) -> vec4<f16> {
  if (MUL_ADD) { return a * b - b; }
  return fma(a, b, -b);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 256u;
  let s = seed[0] ^ id;
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
