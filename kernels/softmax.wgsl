// Row-wise softmax in f32: out[r, c] = exp(x[r, c] − max_r) / Σ_c exp(x[r, c] − max_r).
// Bindings: 1 x [R, C] f32, 2 out [R, C] f32 (may not alias x: one buffer cannot be bound read-only and
//   writable in one dispatch).
// Params: cols C, rows R, row_stride_groups (rows fold into a 2-D grid).
// Grid: flatGrid(R, 1): one workgroup of 256 threads per row; three strided passes (max, sum, write) with
// tree reductions in workgroup memory. Features: none.
struct Params { cols: u32, rows: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce_max(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier(); // red is reused by the next reduction
  return r;
}

fn reduce_sum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * p.row_stride_groups + wg.x;
  let C = p.cols;
  let base = min(row, p.rows - 1u) * C; // surplus workgroups of the fold compute row R−1 and skip writes
  var m = -3.4e38;
  for (var i = li; i < C; i += 256u) { m = max(m, x[base + i]); }
  m = reduce_max(m, li);
  var s = 0.0;
  for (var i = li; i < C; i += 256u) { s += exp(x[base + i] - m); }
  let inv = 1.0 / reduce_sum(s, li);
  if (row >= p.rows) { return; }
  for (var i = li; i < C; i += 256u) { out[base + i] = exp(x[base + i] - m) * inv; }
}
