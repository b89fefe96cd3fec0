// InternLM2 fused wqkv output → q, k, v (REFERENCE §7): a row is [kv group h < Hkv][slot < G+2][Dh] with
// G = H / Hkv; slots 0..G−1 are query heads h·G + slot, slot G is the key, slot G+1 the value of group h.
// Bindings: 1 qkv [T, Hkv·(G+2)·Dh] f32, 2 q [T, H·Dh] f32, 3 k [T, Hkv·Dh] f32, 4 v [T, Hkv·Dh] f32.
// Params: n = T·Hkv·(G+2)·Dh, head_dim Dh, group G, num_kv_heads Hkv, row_stride_groups (flat-grid fold).
// Grid: flatGrid(n, 256); one thread per input element (reads coalesced, each write lands in one output).
// Features: none.
struct Params { n: u32, head_dim: u32, group: u32, num_kv_heads: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let slots = p.group + 2u;
  let width = p.num_kv_heads * slots * p.head_dim;
  let t = i / width;
  let c = i - t * width;
  let hs = c / p.head_dim; // h·(G+2) + slot
  let d = c - hs * p.head_dim;
  let h = hs / slots;
  let slot = hs - h * slots;
  let x = qkv[i];
  if (slot < p.group) {
    q[(t * p.num_kv_heads * p.group + h * p.group + slot) * p.head_dim + d] = x;
  } else if (slot == p.group) {
    k[(t * p.num_kv_heads + h) * p.head_dim + d] = x;
  } else {
    v[(t * p.num_kv_heads + h) * p.head_dim + d] = x;
  }
}
