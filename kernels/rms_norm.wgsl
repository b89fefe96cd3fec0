// InternRMSNorm / InternLM2RMSNorm in fp32: out[t, :] = (x[t, :] · rsqrt(mean(x[t, :]²) + eps)) · weight.
// Bindings: 1 x [T, D] f32, 2 weight [D] f32, 3 out [T, D] f32 (not x: one dispatch cannot bind a buffer read-only and writable).
// Params:   d = D, eps (f32), rows = T, groups_per_row.
// Grid:     one workgroup of WG per row, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Overrides: WG = threads a row, a power of two ≤ 256 (src/ops/norm_threads.ts: 8 on a CPU adapter).
// Features: none.
struct Params { d: u32, eps: f32, rows: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * p.groups_per_row + wg.x;
  if (row >= p.rows) { return; } // uniform: the whole workgroup leaves
  let base = row * p.d;
  var s = 0.0;
  for (var i = li; i < p.d; i += WG) {
    let v = x[base + i];
    s += v * v;
  }
  red[li] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(p.d) + p.eps);
  for (var i = li; i < p.d; i += WG) {
    out[base + i] = (x[base + i] * inv) * weight[i];
  }
}
