// InternLM2 feed-forward gate: out = silu(gate) · up = gate / (1 + exp(−gate)) · up (w1 → gate, w3 → up).
// exp(−gate) overflowing to +inf for gate ≪ 0 gives gate / inf = −0, the right limit.
// Bindings: 1 gate [T, N] f32, 2 up [T, N] f32, 3 out [T, N] f32 (not gate/up).
// Params:   n = T·N, groups_per_row.
// Grid:     ceil(T·N / 256) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params { n: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = g / (1.0 + exp(-g)) * up[i];
}
