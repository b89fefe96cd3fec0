// Token embeddings with image features scattered in (InternVLChatModel.generate: rows whose id is
// <IMG_CONTEXT> are overwritten, in order, by the projected vision features):
//   out[t, :] = image_row[t] >= 0 ? image[image_row[t], :] : f32(table[ids[t], :])
// bf16 → f32 is exact: the bf16 bits are the top half of the f32.
// An id outside [0, V) or an image row outside [0, M) writes `invalid` (NaN) so a bad index is loud.
// Bindings: 1 table     [V, D] bf16x2 (dw = ceil(D/2) words per row; element 2j in the low half)
//           2 ids       [T] i32
//           3 image_row [T] i32 (−1 for text)
//           4 image     [M, D] f32 (any read-only tensor when M = 0)
//           5 out       [T, D] f32
// Params:   n = T·D, d = D, dw, v = V, m = M, invalid (f32), groups_per_row.
// Grid:     ceil(T·D / 256) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params { n: u32, d: u32, dw: u32, v: u32, m: u32, invalid: f32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> image_row: array<i32>;
@group(0) @binding(4) var<storage, read> image: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let t = i / p.d;
  let c = i % p.d;
  let row = image_row[t];
  var v = p.invalid;
  if (row >= 0) {
    if (u32(row) < p.m) { v = image[u32(row) * p.d + c]; }
  } else {
    let id = ids[t];
    if (id >= 0 && u32(id) < p.v) {
      let word = table[u32(id) * p.dw + c / 2u];
      v = bitcast<f32>(select(word & 0xffff0000u, word << 16u, c % 2u == 0u));
    }
  }
  out[i] = v;
}
