// out[t, d] = x[t, d] + scale[d] * y[t, d]      (scale[d] = 1 when p.has_scale == 0)
// Residual connection; with scale it is InternViT's layer scale (ls1/ls2).
// Bindings: x [T, D] f32, y [T, D] f32, scale [D] f32 (any non-empty tensor when unused), out [T, D] f32.
// Grid: ceil(T*D / 256) workgroups of 256 along x (y overflows into the 2nd grid dim for big tensors).
struct Params { n: u32, d: u32, has_scale: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  var s = 1.0;
  if (p.has_scale != 0u) { s = scale[i % p.d]; }
  out[i] = x[i] + s * y[i];
}
