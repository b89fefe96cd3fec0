// Greedy token choice: out[b] = argmax_v logits[b, v], the lowest index winning ties (like torch.argmax).
// NaN logits are not special-cased (torch would return the first NaN); the model never produces them.
// Bindings: 1 logits [B, V] f32, 2 out [B] i32.
// Params: vocab V, row_stride_groups (the B rows fold into a 2-D grid).
// Grid: flatGrid(B, 1): one workgroup of 1024 threads per row; each thread scans a strided slice, then a
// tree reduction in workgroup memory. Features: none.
struct Params { vocab: u32, row_stride_groups: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

const WG = 1024u; // threads per row: each pass over V is latency-bound, so more threads = fewer trips

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

// Element i (visited in increasing order per thread) replaces the running best when larger: strict >
// keeps the lowest index among equal values; idx = vocab means none yet.
fn take(v: ptr<function, f32>, idx: ptr<function, u32>, x: f32, i: u32) {
  if (*idx == p.vocab || x > *v) {
    *v = x;
    *idx = i;
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * p.row_stride_groups + wg.x;
  let V = p.vocab;
  let base = min(row, p.rows - 1u) * V;
  // Start from a real element so even an all −inf row yields a valid index; idx = V marks "none".
  var v = -3.4e38;
  var idx = V;
  // Eight independent loads a round, then compared in index order: the scan is ~12 round trips to L2,
  // not V/WG = 91 (41 µs a step on an H100 for the 92553-token vocabulary).
  var i = li;
  for (; i + 7u * WG < V; i += 8u * WG) {
    let x0 = logits[base + i];
    let x1 = logits[base + i + WG];
    let x2 = logits[base + i + 2u * WG];
    let x3 = logits[base + i + 3u * WG];
    let x4 = logits[base + i + 4u * WG];
    let x5 = logits[base + i + 5u * WG];
    let x6 = logits[base + i + 6u * WG];
    let x7 = logits[base + i + 7u * WG];
    take(&v, &idx, x0, i);
    take(&v, &idx, x1, i + WG);
    take(&v, &idx, x2, i + 2u * WG);
    take(&v, &idx, x3, i + 3u * WG);
    take(&v, &idx, x4, i + 4u * WG);
    take(&v, &idx, x5, i + 5u * WG);
    take(&v, &idx, x6, i + 6u * WG);
    take(&v, &idx, x7, i + 7u * WG);
  }
  for (; i < V; i += WG) { take(&v, &idx, logits[base + i], i); }
  best_v[li] = v;
  best_i[li] = idx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      let ov = best_v[li + s];
      let oi = best_i[li + s];
      let mi = best_i[li];
      if (oi != V && (mi == V || ov > best_v[li] || (ov == best_v[li] && oi < mi))) {
        best_v[li] = ov;
        best_i[li] = oi;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u && row < p.rows) { out[row] = i32(best_i[0]); }
}
