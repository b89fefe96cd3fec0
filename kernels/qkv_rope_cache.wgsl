// InternLM2 attention prologue in one pass (REFERENCE §7): splits the fused wqkv output, applies the rotary
// embedding to queries and keys, and appends keys and values to the KV cache. It replaces
// split_lm_qkv → rope(q) → rope(k) → kv_write(k) → kv_write(v) with the same f32 operations:
// - a qkv row is [kv group h < Hkv][slot < G+2][Dh] (G = H / Hkv): slots 0..G−1 are query heads h·G + slot,
//   slot G is the key and slot G+1 the value of group h;
// - rope (rotate_half): the pairs (i, i + Dh/2) of a query or key head rotate by the tables' angle of the
//   row's position:  x[i] ← x[i]·cos − x[i+Dh/2]·sin,  x[i+Dh/2] ← x[i+Dh/2]·cos + x[i]·sin;
// - row b·T + t of the keys / values goes to cache position start_pos + t of sample b.
// Bindings: 1 qkv [B·T, Hkv·(G+2)·Dh] f32, 2 positions [B·T] i32, 3 cos [P, Dh/2] f32, 4 sin [P, Dh/2] f32,
//   5 q [B·T, H·Dh] f32 (rotated queries), 6 k_cache [B, S, Hkv·Dh] f32, 7 v_cache [B, S, Hkv·Dh] f32
//   (the kernel `qkv_rope_cache+kv_bf16`: both bf16x2, kernels/kv_bf16.wgsl; a word then holds the elements
//   of pairs i and i + 1, so for keys and values the thread of an even pair writes both pairs' words and
//   the odd pair's thread nothing; Dh % 4 == 0).
// Params: n = B·T·Hkv·(G+2)·Dh/2 (one thread per pair), half = Dh/2, group G, num_kv_heads Hkv, tokens T,
//   seq S, start_pos, max_pos P, row_stride_groups (flat-grid fold). Positions outside [0, P) are clamped
//   like kernels/rope.wgsl; the launcher checks start_pos + T ≤ S.
// Grid: flatGrid(n, 256); consecutive threads take consecutive pairs, so reads and writes are coalesced.
// Features: none.
struct Params {
  n: u32,
  half: u32,
  group: u32,
  num_kv_heads: u32,
  tokens: u32,
  seq: u32,
  start_pos: u32,
  max_pos: u32,
  row_stride_groups: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> cos_t: array<f32>;
@group(0) @binding(4) var<storage, read> sin_t: array<f32>;
@group(0) @binding(5) var<storage, read_write> q: array<f32>;
@group(0) @binding(6) var<storage, read_write> k_cache: array<KvWord>;
@group(0) @binding(7) var<storage, read_write> v_cache: array<KvWord>;

// #include kv_f32

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (idx >= p.n) { return; }
  let half = p.half;
  let dh = 2u * half;
  let slots = p.group + 2u;
  let pairs_per_row = p.num_kv_heads * slots * half;
  let row = idx / pairs_per_row; // b·T + t
  let rem = idx - row * pairs_per_row;
  let hs = rem / half; // h·(G+2) + slot
  let i = rem - hs * half;
  let h = hs / slots;
  let slot = hs - h * slots;
  let a = row * pairs_per_row * 2u + hs * dh + i;
  if (slot < p.group) {
    let y = pair(a, row, i, true);
    let at = ((row * p.num_kv_heads + h) * p.group + slot) * dh + i;
    q[at] = y.x;
    q[at + half] = y.y;
    return;
  }
  // The key (rotated) or the value goes to the cache, KV_PER_WORD elements a word (kernels/kv_f32.wgsl,
  // kv_bf16.wgsl): with two, the thread of an even pair i also makes pair i + 1 and writes both words.
  if (i % KV_PER_WORD != 0u) { return; }
  let is_v = slot == p.group + 1u;
  let y = pair(a, row, i, !is_v);
  var y_next = y;
  if (KV_PER_WORD == 2u) { y_next = pair(a + 1u, row, i + 1u, !is_v); }
  let at = cache_at(row, h, i) / KV_PER_WORD;
  let at2 = at + half / KV_PER_WORD;
  if (is_v) {
    v_cache[at] = kv_narrow2(y.x, y_next.x);
    v_cache[at2] = kv_narrow2(y.y, y_next.y);
  } else {
    k_cache[at] = kv_narrow2(y.x, y_next.x);
    k_cache[at2] = kv_narrow2(y.y, y_next.y);
  }
}

// Pair i (x[i], x[i + Dh/2]) of the head at qkv index a (of its element i), rotated by the angle of row's
// position when `rotate` (queries and keys; values are copied).
fn pair(a: u32, row: u32, i: u32, rotate: bool) -> vec2f {
  let half = p.half;
  let x1 = qkv[a];
  let x2 = qkv[a + half];
  if (!rotate) { return vec2f(x1, x2); }
  let pos = u32(clamp(positions[row], 0, i32(p.max_pos) - 1));
  let c = cos_t[pos * half + i];
  let s = sin_t[pos * half + i];
  return vec2f(x1 * c - x2 * s, x2 * c + x1 * s);
}

// Element i of kv head h of input row b·T + t in the cache: [b, start_pos + t, h·Dh + i].
fn cache_at(row: u32, h: u32, i: u32) -> u32 {
  let b = row / p.tokens;
  let t = row - b * p.tokens;
  return ((b * p.seq + p.start_pos + t) * p.num_kv_heads + h) * 2u * p.half + i;
}
