// nn.LayerNorm in fp32 (mlp1.0): out[t, :] = (x[t, :] − mean) · rsqrt(var + eps) · weight + bias,
// var the biased variance. Two passes over the row (mean, then Σ(x − mean)²) rather than Σx² − mean²,
// which cancels badly when |mean| ≫ std.
// Bindings: 1 x [T, D] f32, 2 weight [D] f32, 3 bias [D] f32, 4 out [T, D] f32 (not x: one dispatch cannot bind a buffer read-only and writable).
// Params:   d = D, eps (f32), rows = T, groups_per_row.
// Grid:     one workgroup of WG per row, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Overrides: WG = threads a row, a power of two ≤ 256 (src/ops/norm_threads.ts: 8 on a CPU adapter).
// Features: none.
struct Params { d: u32, eps: f32, rows: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

var<workgroup> red: array<f32, 256>;

// Sum of every thread's `v` (all threads must call it).
fn workgroup_sum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // everyone has read red[0] before it is reused
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * p.groups_per_row + wg.x;
  if (row >= p.rows) { return; } // uniform: the whole workgroup leaves
  let base = row * p.d;
  var s = 0.0;
  for (var i = li; i < p.d; i += WG) { s += x[base + i]; }
  let mean = workgroup_sum(li, s) / f32(p.d);
  var q = 0.0;
  for (var i = li; i < p.d; i += WG) {
    let c = x[base + i] - mean;
    q += c * c;
  }
  let inv = inverseSqrt(workgroup_sum(li, q) / f32(p.d) + p.eps);
  for (var i = li; i < p.d; i += WG) {
    out[base + i] = (x[base + i] - mean) * inv * weight[i] + bias[i];
  }
}
