// Appends new keys (or values) to a KV cache: row b·T + t of kv goes to cache[b, start_pos + t].
// Bindings: 1 kv [B·T, W] f32 (W = Hkv·Dh), 2 cache [B, S, W] f32.
// Params: n = B·T·W, width W, tokens T, seq S, start_pos, row_stride_groups (flat-grid fold).
// Grid: flatGrid(n, 256), one thread per element. The launcher checks start_pos + T ≤ S. Features: none.
struct Params { n: u32, width: u32, tokens: u32, seq: u32, start_pos: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read_write> cache: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let row = i / p.width;
  let c = i - row * p.width;
  let b = row / p.tokens;
  let t = row - b * p.tokens;
  cache[(b * p.seq + p.start_pos + t) * p.width + c] = kv[i];
}
