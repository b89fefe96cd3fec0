// Causal grouped-query attention over the KV cache (InternLM2, REFERENCE §7), prefill and decode.
// Query t of sample b sits at cache position start_pos + t and attends to cache positions
// 0 … start_pos + t whose key_valid is 1; query head j reads kv head j / G (G = H / Hkv);
// softmax(q·kᵀ·Dh^-0.5)·v in f32. Rows whose keys are all masked (left padding) produce zeros.
// Flash-attention style: a workgroup owns BQ = 16 query rows of ONE kv head — rows enumerate
// (t, g) = (r / G, r % G), so the G query heads sharing a kv head reuse each K/V tile (decode: G of 16
// rows busy, but the cache is read once per kv head) — and streams keys in tiles of BK = 32 through
// workgroup memory with an online softmax.
// Split-K (flash-decoding): the keys are cut into num_splits chunks of `chunk` keys, one workgroup each.
// With num_splits == 1 rows are normalised and written to `out`; otherwise each workgroup writes its
// unnormalised partial row (o[Dh], running max m, sum l) to `partial`, and attention_causal_combine
// merges them.
// Bindings: 1 q [B·T, H·Dh] f32, 2 k_cache [B, S, Hkv·Dh] f32, 3 v_cache [B, S, Hkv·Dh] f32 (the kernel
//   `attention_causal+kv_bf16`: both bf16x2, read as vec2<u32>, kernels/kv_bf16.wgsl),
//   4 key_valid [B, S] i32, 5 out [B·T, H·Dh] f32, 6 partial [num_splits, B·T·H, Dh+2] f32
//   (any writable tensor when num_splits == 1). q/k/v/out are read as vec4: Dh % 4 == 0, Dh ≤ 128.
// Params: batch B, tokens T, num_heads H, num_kv_heads Hkv, head_dim Dh, seq S, start_pos, chunk (multiple of
//   BK), num_splits, scale = Dh^-0.5 (f32).
// Grid: (ceil(T·G / 16), Hkv·num_splits, B) workgroups of 128 threads; thread = (row = li / 8,
//   lane = li % 8); a lane owns output vec4 columns lane, lane + 8, lane + 16, lane + 24.
// Workgroup memory ≈ 27 KiB. Features: none.
struct Params {
  batch: u32,
  tokens: u32,
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  seq: u32,
  start_pos: u32,
  chunk: u32,
  num_splits: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k_cache: array<KvVec4>;
@group(0) @binding(3) var<storage, read> v_cache: array<KvVec4>;
@group(0) @binding(4) var<storage, read> key_valid: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

// #include kv_f32

const BQ = 16u;
const BK = 32u;
const LANES = 8u;
const D4_MAX = 32u;
const KV_STRIDE = 33u; // padded rows: the 8 lanes of a row read different banks
const S_STRIDE = 33u;
const NEG = -3.0e38;   // "no score yet"; masked keys are tracked by flag, never by this value alone

var<workgroup> qs: array<vec4f, 512>;   // [BQ][D4_MAX], pre-scaled queries
var<workgroup> kvs: array<vec4f, 1056>; // [BK][KV_STRIDE]: K tile, then V tile
var<workgroup> ss: array<f32, 528>;     // [BQ][S_STRIDE]: scores, then probabilities
var<workgroup> kmask: array<u32, 32>;   // [BK] key in this split's range and not padding

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let T = p.tokens;
  let H = p.num_heads;
  let Hkv = p.num_kv_heads;
  let G = H / Hkv;
  let d4 = p.head_dim / 4u;
  let hkv = wg.y % Hkv;
  let split = wg.y / Hkv;
  let b = wg.z;
  let r0 = wg.x * BQ;
  let row = li / LANES;
  let lane = li % LANES;
  let t = (r0 + row) / G;
  let g = (r0 + row) % G;
  let row_ok = t < T;
  let head = hkv * G + g;

  for (var i = li; i < BQ * d4; i += 128u) {
    let r = i / d4;
    let c = i - r * d4;
    let tr = (r0 + r) / G;
    var x = vec4f(0.0);
    if (tr < T) { x = q[((b * T + tr) * H + hkv * G + (r0 + r) % G) * d4 + c] * p.scale; }
    qs[r * D4_MAX + c] = x;
  }

  // Keys this workgroup visits: its split's chunk, cut at the causal limit of the tile's last query.
  let t_last = min(T - 1u, (r0 + BQ - 1u) / G);
  let k_begin = split * p.chunk;
  let k_end = min(k_begin + p.chunk, p.start_pos + t_last + 1u);
  let limit = p.start_pos + t; // last key position this row may see

  var m = NEG;
  var l = 0.0;
  var o0 = vec4f(0.0);
  var o1 = vec4f(0.0);
  var o2 = vec4f(0.0);
  var o3 = vec4f(0.0);

  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    for (var i = li; i < BK * d4; i += 128u) {
      let j = i / d4;
      let c = i - j * d4;
      var x = vec4f(0.0);
      if (k0 + j < k_end) { x = kv_widen4(k_cache[((b * p.seq + k0 + j) * Hkv + hkv) * d4 + c]); }
      kvs[j * KV_STRIDE + c] = x;
    }
    if (li < BK) {
      let pos = k0 + li;
      kmask[li] = select(0u, 1u, pos < k_end && key_valid[b * p.seq + min(pos, p.seq - 1u)] != 0);
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
    let ok0 = row_ok && kmask[j0] != 0u && k0 + j0 <= limit;
    let ok1 = row_ok && kmask[j0 + 8u] != 0u && k0 + j0 + 8u <= limit;
    let ok2 = row_ok && kmask[j0 + 16u] != 0u && k0 + j0 + 16u <= limit;
    let ok3 = row_ok && kmask[j0 + 24u] != 0u && k0 + j0 + 24u <= limit;
    let s0 = select(NEG, a0, ok0);
    let s1 = select(NEG, a1, ok1);
    let s2 = select(NEG, a2, ok2);
    let s3 = select(NEG, a3, ok3);
    ss[row * S_STRIDE + j0] = s0;
    ss[row * S_STRIDE + j0 + 8u] = s1;
    ss[row * S_STRIDE + j0 + 16u] = s2;
    ss[row * S_STRIDE + j0 + 24u] = s3;
    workgroupBarrier();

    var tile_max = NEG;
    for (var j = 0u; j < BK; j++) { tile_max = max(tile_max, ss[row * S_STRIDE + j]); }
    let m_new = max(m, tile_max);
    let alpha = exp(m - m_new); // 1 while the row has seen no key (o, l are 0 then)
    for (var i = li; i < BK * d4; i += 128u) {
      let j = i / d4;
      let c = i - j * d4;
      var x = vec4f(0.0);
      if (k0 + j < k_end) { x = kv_widen4(v_cache[((b * p.seq + k0 + j) * Hkv + hkv) * d4 + c]); }
      kvs[j * KV_STRIDE + c] = x;
    }
    workgroupBarrier(); // every lane has read its row's scores before they are overwritten

    ss[row * S_STRIDE + j0] = select(0.0, exp(s0 - m_new), ok0);
    ss[row * S_STRIDE + j0 + 8u] = select(0.0, exp(s1 - m_new), ok1);
    ss[row * S_STRIDE + j0 + 16u] = select(0.0, exp(s2 - m_new), ok2);
    ss[row * S_STRIDE + j0 + 24u] = select(0.0, exp(s3 - m_new), ok3);
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
    workgroupBarrier(); // before the next tile overwrites kvs, ss and kmask
  }

  if (!row_ok) { return; }
  let out_row = (b * T + t) * H + head;
  if (p.num_splits == 1u) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let at = out_row * d4 + lane;
    if (lane < d4) { out[at] = o0 * inv; }
    if (lane + 8u < d4) { out[at + 8u] = o1 * inv; }
    if (lane + 16u < d4) { out[at + 16u] = o2 * inv; }
    if (lane + 24u < d4) { out[at + 24u] = o3 * inv; }
  } else {
    let width = p.head_dim + 2u;
    let base = (split * p.batch * T * H + out_row) * width;
    if (lane < d4) { store_partial(base + 4u * lane, o0); }
    if (lane + 8u < d4) { store_partial(base + 4u * (lane + 8u), o1); }
    if (lane + 16u < d4) { store_partial(base + 4u * (lane + 16u), o2); }
    if (lane + 24u < d4) { store_partial(base + 4u * (lane + 24u), o3); }
    if (lane == 0u) {
      partial[base + p.head_dim] = m;
      partial[base + p.head_dim + 1u] = l;
    }
  }
}

fn store_partial(at: u32, x: vec4f) {
  partial[at] = x.x;
  partial[at + 1u] = x.y;
  partial[at + 2u] = x.z;
  partial[at + 3u] = x.w;
}
