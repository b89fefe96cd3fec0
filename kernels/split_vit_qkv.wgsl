// InternViT fused qkv → separate q, k, v (REFERENCE §6: qkv reshaped (B, N, 3, H, Dh), so the 3D columns
// are [q | k | v], each head-major).
// Bindings: 1 qkv [T, 3D] f32, 2 q [T, D] f32, 3 k [T, D] f32, 4 v [T, D] f32.
// Params: n = T·D, d = D, row_stride_groups (flat-grid fold, src/ops/grid.ts).
// Grid: flatGrid(T·D, 256); one thread per (t, c) writes q, k and v at column c.
// Features: none.
struct Params { n: u32, d: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let t = i / p.d;
  let c = i - t * p.d;
  let src = t * 3u * p.d + c;
  q[i] = qkv[src];
  k[i] = qkv[src + p.d];
  v[i] = qkv[src + 2u * p.d];
}
