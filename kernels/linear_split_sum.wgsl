// The second half of kernels/linear_tiled.wgsl with SPLIT (split K): adds the splits' raw sums and applies
// what the tiled kernel's epilogue applies without splits:
//   out[t, n] (+)= scale[n] · Σ_z partial[z, t, n] + bias[n]
// the splits summed in order z = 0, 1, … (the same result every run). Memory-bound and small next to the
// product it ends (a few MB of partials against the product's GFLOPs).
//
// Bindings: 1 partial [splits, T, N] f32, 2 scale [N] f32 (read only when has_scale), 3 bias [N] f32 (read
//           only when has_bias), 4 out [T, N] f32.
// Params:   count = T·N, n = N, splits (≥ 1), has_scale, has_bias, accumulate (1: out += result, the residual
//           add), groups_per_row (the grid's x, folded into 2-D past 65535 workgroups).
// Grid:     ceil(T·N / 256) workgroups of 256, folded into 2-D (src/ops/grid.ts). Features: none.
struct Params {
  count: u32, n: u32, splits: u32, has_scale: u32, has_bias: u32, accumulate: u32, groups_per_row: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.count) { return; }
  var sum = 0.0;
  for (var z = 0u; z < p.splits; z++) { sum += partial[z * p.count + i]; }
  let n = i % p.n;
  if (p.has_scale != 0u) { sum *= scale[n]; }
  if (p.has_bias != 0u) { sum += bias[n]; }
  if (p.accumulate != 0u) { sum += out[i]; }
  out[i] = sum;
}
