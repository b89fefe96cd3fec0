// acc[t, d] += scale[d] * y[t, d]      (scale[d] = 1 when p.has_scale == 0)
// The residual connection, updated in place (WebGPU forbids binding one buffer as both read-only and
// writable in a dispatch, so "out = x + y" with out == x must be one read_write binding).
// With scale it is InternViT's layer scale (ls1/ls2).
// Bindings: acc [T, D] f32 (read_write), y [T, D] f32, scale [D] f32 (any tensor other than acc when unused).
// Grid: ceil(T*D / 256) workgroups of 256, folded into 2-D (src/ops/grid.ts).
struct Params { n: u32, d: u32, has_scale: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  var s = 1.0;
  if (p.has_scale != 0u) { s = scale[i % p.d]; }
  acc[i] = acc[i] + s * y[i];
}
