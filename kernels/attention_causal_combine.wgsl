// Second pass of split-K attention (kernels/attention_causal.wgsl with num_splits > 1): merges the
// per-split partial rows (o unnormalised, running max m, sum l) of each (token, head) row:
//   M = max_s m_s,  out = Σ_s o_s·e^(m_s−M) / Σ_s l_s·e^(m_s−M);  a row no split saw a key for gives 0.
// Bindings: 1 partial [num_splits, R, Dh+2] f32 (R = B·T·H), 2 out [R·Dh] f32 (= [B·T, H·Dh]).
// Params: n = R·Dh, head_dim Dh, num_splits, rows R, row_stride_groups (flat-grid fold).
// Grid: flatGrid(n, 256), one thread per output element (each re-reads the few m, l of its row).
// Features: none.
struct Params { n: u32, head_dim: u32, num_splits: u32, rows: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let r = i / p.head_dim;
  let d = i - r * p.head_dim;
  let width = p.head_dim + 2u;
  var big_m = -3.0e38;
  for (var s = 0u; s < p.num_splits; s++) {
    let base = (s * p.rows + r) * width;
    if (partial[base + p.head_dim + 1u] > 0.0) { big_m = max(big_m, partial[base + p.head_dim]); }
  }
  var num = 0.0;
  var den = 0.0;
  for (var s = 0u; s < p.num_splits; s++) {
    let base = (s * p.rows + r) * width;
    let l = partial[base + p.head_dim + 1u];
    if (l > 0.0) {
      let w = exp(partial[base + p.head_dim] - big_m);
      num += partial[base + d] * w;
      den += l * w;
    }
  }
  out[i] = select(0.0, num / den, den > 0.0);
}
