// Records token ids in the per-row "seen" mask that repetition_penalty reads: seen[b, ids[b, l]] = 1.
// Ids outside [0, V) are skipped, so callers can pass −1 for slots to ignore (e.g. left padding).
// Bindings: 1 ids [B, L] i32 (or [B]: L = 1), 2 seen [B, V] u32.
// Params: n = B·L, per_row L, vocab V, row_stride_groups (flat-grid fold).
// Grid: flatGrid(B·L, 256), one thread per id (duplicate ids write the same 1: no race). Features: none.
struct Params { n: u32, per_row: u32, vocab: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let id = ids[i];
  if (id < 0 || u32(id) >= p.vocab) { return; }
  seen[(i / p.per_row) * p.vocab + u32(id)] = 1u;
}
