// HF RepetitionPenaltyLogitsProcessor on the GPU: for every token already seen in the row,
//   logit < 0 → logit · penalty,  otherwise logit / penalty.
// Bindings: 1 logits [B, V] f32 (in place), 2 seen [B, V] u32 (0/1, kernels/mark_seen.wgsl).
// Params: n = B·V, penalty (f32), row_stride_groups (flat-grid fold).
// Grid: flatGrid(B·V, 256), one thread per logit. Features: none.
struct Params { n: u32, penalty: f32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> seen: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n || seen[i] == 0u) { return; }
  let x = logits[i];
  logits[i] = select(x / p.penalty, x * p.penalty, x < 0.0);
}
