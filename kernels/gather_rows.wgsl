// Row gather: out[i, :] = src[row(i), :D], row(i) = rows[i] (gatherRows) or first_row + i (copyRows, e.g. the
// last prompt position before the LM head; joinRowGroups, src rows longer than D). A row outside [0, R)
// writes `invalid` (NaN), loudly wrong.
// Bindings: 1 src [R, src_d] f32, 2 rows [n] i32 (any read-only tensor when use_index = 0), 3 out f32, total
//           elements, row after row of D (the last one may be short).
// Params:   total (≤ n·D), d = D, r = R, first_row, use_index, invalid (f32), groups_per_row, src_d (≥ D).
// Grid:     ceil(n·D / 256) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params {
  total: u32, d: u32, r: u32, first_row: u32, use_index: u32, invalid: f32, groups_per_row: u32, src_d: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.total) { return; }
  let k = i / p.d;
  var row = i32(p.first_row + k);
  if (p.use_index != 0u) { row = rows[k]; }
  var v = p.invalid;
  if (row >= 0 && u32(row) < p.r) { v = src[u32(row) * p.src_d + i % p.d]; }
  out[i] = v;
}
