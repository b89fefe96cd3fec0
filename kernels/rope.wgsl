// Rotary position embedding, LLaMA/InternLM2 rotate_half convention (REFERENCE §7): in every head the
// pairs (i, i + Dh/2) rotate by angle position·inv_freq[i]:
//   x[i] ← x[i]·cos − x[i+Dh/2]·sin,   x[i+Dh/2] ← x[i+Dh/2]·cos + x[i]·sin.
// cos/sin come from tables built on the CPU in float32 like the reference (src/ops/rope.ts ropeTables):
// GPU cos/sin are inaccurate for the large angles of late positions (up to ~3·10⁴ rad).
// Bindings: 1 x [T, nH·Dh] f32 (rotated in place), 2 positions [T] i32, 3 cos [P, Dh/2] f32,
//   4 sin [P, Dh/2] f32.
// Params: n = T·nH·Dh/2 (one thread per pair), half = Dh/2, max_pos = P, row_stride_groups (flat fold).
// Positions outside [0, P) are clamped (the launcher cannot see GPU-side positions; callers keep them
// below P). Grid: flatGrid(n, 256). Features: none.
struct Params { n: u32, half: u32, max_pos: u32, heads: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> cos_t: array<f32>;
@group(0) @binding(4) var<storage, read> sin_t: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let idx = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (idx >= p.n) { return; }
  let th = idx / p.half; // t·nH + head
  let i = idx - th * p.half;
  let t = th / p.heads;
  let pos = u32(clamp(positions[t], 0, i32(p.max_pos) - 1));
  let c = cos_t[pos * p.half + i];
  let s = sin_t[pos * p.half + i];
  let a = th * 2u * p.half + i;
  let x1 = x[a];
  let x2 = x[a + p.half];
  x[a] = x1 * c - x2 * s;
  x[a + p.half] = x2 * c + x1 * s;
}
