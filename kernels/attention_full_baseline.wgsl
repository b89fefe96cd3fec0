// BENCHMARK BASELINE ONLY: the attention_full kernel as it was before the register-blocked rewrite, kept so
// scripts/bench_attention.ts can time the new kernel against it in the same run. Nothing in src/ launches it.
// Same bindings and params as kernels/attention_full.wgsl; grid (ceil(T / 16), H, B), no override constants.
//
// Bidirectional multi-head attention (InternViT, REFERENCE §6): per tile b and head h,
//   out = softmax((q · Dh^-0.5) · kᵀ) · v   over all T tokens of the tile, no mask.
// Flash-attention style: a workgroup owns BQ = 16 query rows of one (b, h), streams the keys in tiles of
// BK = 32 through workgroup memory and keeps a running max / sum per row (online softmax), so the
// T×T score matrix never exists.
// Bindings: 1 q [B·T, H·Dh] f32, 2 k [B·T, H·Dh] f32, 3 v [B·T, H·Dh] f32, 4 out [B·T, H·Dh] f32
//   (all read as vec4: Dh % 4 == 0, Dh ≤ 128).
// Params: tokens T, num_heads H, head_dim Dh, scale = Dh^-0.5 (f32).
// Grid: (ceil(T / 16), H, B) workgroups of 128 threads; thread = (row = li / 8, lane = li % 8), a lane owns
//   output columns (vec4) lane, lane + 8, lane + 16, lane + 24.
// Workgroup memory: 8 KiB Q + 16.5 KiB K/V + 2 KiB scores ≈ 27 KiB (fits the 32 KiB limit of llvmpipe and
//   the 48 KiB of NVIDIA Vulkan). Features: none.
struct Params { tokens: u32, num_heads: u32, head_dim: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;

const BQ = 16u;
const BK = 32u;
const LANES = 8u;       // threads per query row
const D4_MAX = 32u;     // Dh ≤ 128
const KV_STRIDE = 33u;  // K/V rows padded by one vec4 so the 8 lanes of a row hit different banks
const S_STRIDE = 33u;   // BK + 1, same reason
const NEG = -3.0e38;

var<workgroup> qs: array<vec4f, 512>;   // [BQ][D4_MAX]
var<workgroup> kvs: array<vec4f, 1056>; // [BK][KV_STRIDE]: K tile, then V tile
var<workgroup> ss: array<f32, 528>;     // [BQ][S_STRIDE]: scores, then probabilities

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let T = p.tokens;
  let d4 = p.head_dim / 4u;
  let row_stride = p.num_heads * d4; // vec4s per token row
  let h = wg.y;
  let b = wg.z;
  let q0 = wg.x * BQ;
  let row = li / LANES;
  let lane = li % LANES;
  let t = q0 + row;
  let base = b * T * row_stride + h * d4; // vec4 index of (b, token 0, head h)

  for (var i = li; i < BQ * d4; i += 128u) {
    let r = i / d4;
    let c = i - r * d4;
    var x = vec4f(0.0);
    if (q0 + r < T) { x = q[base + (q0 + r) * row_stride + c] * p.scale; }
    qs[r * D4_MAX + c] = x;
  }

  var m = NEG; // running max; every key tile holds ≥ 1 real key, so it is real after the first
  var l = 0.0;
  var o0 = vec4f(0.0);
  var o1 = vec4f(0.0);
  var o2 = vec4f(0.0);
  var o3 = vec4f(0.0);

  for (var k0 = 0u; k0 < T; k0 += BK) {
    for (var i = li; i < BK * d4; i += 128u) {
      let j = i / d4;
      let c = i - j * d4;
      var x = vec4f(0.0);
      if (k0 + j < T) { x = k[base + (k0 + j) * row_stride + c]; }
      kvs[j * KV_STRIDE + c] = x;
    }
    workgroupBarrier();

    // Four keys per lane, q loaded once per column: plain variables rather than indexed arrays so they
    // stay in registers (dynamically indexed arrays may be spilled to local memory).
    let j0 = lane;
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    for (var c = 0u; c < d4; c++) {
      let qv = qs[row * D4_MAX + c];
      a0 += dot(qv, kvs[j0 * KV_STRIDE + c]);
      a1 += dot(qv, kvs[(j0 + 8u) * KV_STRIDE + c]);
      a2 += dot(qv, kvs[(j0 + 16u) * KV_STRIDE + c]);
      a3 += dot(qv, kvs[(j0 + 24u) * KV_STRIDE + c]);
    }
    let s0 = select(NEG, a0, k0 + j0 < T);
    let s1 = select(NEG, a1, k0 + j0 + 8u < T);
    let s2 = select(NEG, a2, k0 + j0 + 16u < T);
    let s3 = select(NEG, a3, k0 + j0 + 24u < T);
    ss[row * S_STRIDE + j0] = s0;
    ss[row * S_STRIDE + j0 + 8u] = s1;
    ss[row * S_STRIDE + j0 + 16u] = s2;
    ss[row * S_STRIDE + j0 + 24u] = s3;
    workgroupBarrier();

    var tile_max = NEG;
    for (var j = 0u; j < BK; j++) { tile_max = max(tile_max, ss[row * S_STRIDE + j]); }
    let m_new = max(m, tile_max);
    let alpha = exp(m - m_new);
    // The K tile is no longer needed: reuse its memory for V.
    for (var i = li; i < BK * d4; i += 128u) {
      let j = i / d4;
      let c = i - j * d4;
      var x = vec4f(0.0);
      if (k0 + j < T) { x = v[base + (k0 + j) * row_stride + c]; }
      kvs[j * KV_STRIDE + c] = x;
    }
    workgroupBarrier(); // every lane has read its row's scores before they are overwritten

    ss[row * S_STRIDE + j0] = select(0.0, exp(s0 - m_new), k0 + j0 < T);
    ss[row * S_STRIDE + j0 + 8u] = select(0.0, exp(s1 - m_new), k0 + j0 + 8u < T);
    ss[row * S_STRIDE + j0 + 16u] = select(0.0, exp(s2 - m_new), k0 + j0 + 16u < T);
    ss[row * S_STRIDE + j0 + 24u] = select(0.0, exp(s3 - m_new), k0 + j0 + 24u < T);
    workgroupBarrier();

    // Columns past Dh/4 read K/V slots that are never written (zero), so no per-column guard is needed.
    l *= alpha;
    o0 *= alpha;
    o1 *= alpha;
    o2 *= alpha;
    o3 *= alpha;
    for (var j = 0u; j < BK; j++) {
      let pj = ss[row * S_STRIDE + j];
      l += pj;
      let vr = j * KV_STRIDE + lane;
      o0 += pj * kvs[vr];
      o1 += pj * kvs[vr + 8u];
      o2 += pj * kvs[vr + 16u];
      o3 += pj * kvs[vr + 24u];
    }
    m = m_new;
    workgroupBarrier(); // before the next tile overwrites kvs and ss
  }

  if (t < T) {
    let inv = 1.0 / l;
    let at = base + t * row_stride + lane;
    if (lane < d4) { out[at] = o0 * inv; }
    if (lane + 8u < d4) { out[at + 8u] = o1 * inv; }
    if (lane + 16u < d4) { out[at + 16u] = o2 * inv; }
    if (lane + 24u < d4) { out[at + 24u] = o3 * inv; }
  }
}
