// Grouped-query attention of ONE new query per sequence (decode, T = 1) over the KV cache, flash-decoding
// style (REFERENCE §7): query head j of sample b attends to cache positions 0 … kv_len−1 whose key_valid is
// 1, reading kv head j / G (G = H / Hkv); softmax(q·kᵀ·Dh^-0.5)·v in f32; a head that sees no valid key
// gives zeros.
// Bandwidth plan: a workgroup owns (split, kv head, sample), i.e. `chunk` consecutive keys of one kv head,
// and streams them in tiles of BK = 16 keys. Every K/V row is read from memory ONCE, as coalesced vec4 runs
// (a row of one kv head is Dh·4 contiguous bytes), and serves all G query heads of that kv head. The next
// tile's loads are issued into registers before the current tile is computed, so memory and math overlap.
// With num_splits == 1 the row is normalised into `out`; otherwise each workgroup writes its unnormalised
// partial rows (o[Dh], then (m, l, 0, 0)) and attention_decode_combine merges the splits.
//
// Bindings: 1 q [B, H·Dh] f32, 2 k_cache [B, S, Hkv·Dh] f32, 3 v_cache [B, S, Hkv·Dh] f32,
//   4 key_valid [B, S] i32, 5 out [B, H·Dh] f32,
//   6 partial [num_splits, B·H, Dh+4] f32 (any writable tensor when num_splits == 1).
// Params: batch B, seq S, kv_len, num_heads H, num_kv_heads Hkv, chunk (multiple of BK), num_splits,
//   group G = H/Hkv (1..8), scale = Dh^-0.5 (f32).
// Overrides: D4 = Dh/4 (1..32), so loop bounds and row indexing are compile-time constants.
// Grid: (num_splits, Hkv, B) workgroups of 128 threads. Score phase: thread = (key j = li / 8, head
//   g = li % 8); value phase: thread = (column c = li % D4, head group gq = li / D4) owning heads gq and
//   gq + 128/D4 (so G ≤ 2·128/D4, always true for G ≤ 8).
// Workgroup memory ≈ 22 KiB. Features: none.
struct Params {
  batch: u32,
  seq: u32,
  kv_len: u32,
  num_heads: u32,
  num_kv_heads: u32,
  chunk: u32,
  num_splits: u32,
  group: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k_cache: array<vec4f>;
@group(0) @binding(3) var<storage, read> v_cache: array<vec4f>;
@group(0) @binding(4) var<storage, read> key_valid: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> partial: array<vec4f>;

override D4: u32 = 32u;

const WG = 128u;
const BK = 16u;
const MAX_G = 8u;
const STRIDE = 33u;    // padded rows of qs and ks: the 4 keys / 8 heads a warp reads sit in different banks
const NEG = -3.0e38;   // "no score yet"; masked keys are tracked by flag, never by this value alone

var<workgroup> qs: array<vec4f, 264>;  // [MAX_G][STRIDE] pre-scaled queries of this kv head's group
var<workgroup> ks: array<vec4f, 528>;  // [BK][STRIDE] K tile
var<workgroup> vs: array<vec4f, 512>;  // [BK][D4] V tile
var<workgroup> ss: array<f32, 128>;    // [MAX_G][BK] scores
var<workgroup> ps: array<f32, 128>;    // [MAX_G][BK] probabilities e^(s − m)
var<workgroup> kmask: array<u32, 16>;  // [BK] key inside this split and valid
var<workgroup> alphas: array<f32, 8>;  // [MAX_G] e^(m_old − m_new) of this tile
var<workgroup> ms: array<f32, 8>;      // [MAX_G] running max

// One thread's share of a K/V tile, held in registers between its load and its store to workgroup memory:
// vec4 n sits at row (li + n·WG) / D4, column (li + n·WG) % D4 (BK·D4 ≤ 4·WG); okN = row inside the split
// and key_valid; mk = key li of the tile is (threads li < BK). Named fields, not arrays, so they stay in
// registers.
struct Tile {
  k0: vec4f, k1: vec4f, k2: vec4f, k3: vec4f,
  v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f,
  ok0: bool, ok1: bool, ok2: bool, ok3: bool,
  mk: bool,
}

// Issues the loads of the tile of keys k0 … k0+BK−1 (those below k_end); nothing waits on them until
// store_tile, so they are in flight while the current tile is computed.
fn load_tile(b: u32, hkv: u32, k0: u32, k_end: u32, li: u32) -> Tile {
  var t: Tile;
  let row0 = (b * p.seq + k0) * p.num_kv_heads + hkv;
  let vb = b * p.seq + k0;
  let n_vec = BK * D4;
  var i = li;
  var j = i / D4;
  if (i < n_vec && k0 + j < k_end) {
    let at = (row0 + j * p.num_kv_heads) * D4 + i % D4;
    t.k0 = k_cache[at]; t.v0 = v_cache[at]; t.ok0 = key_valid[vb + j] != 0;
  }
  i += WG; j = i / D4;
  if (i < n_vec && k0 + j < k_end) {
    let at = (row0 + j * p.num_kv_heads) * D4 + i % D4;
    t.k1 = k_cache[at]; t.v1 = v_cache[at]; t.ok1 = key_valid[vb + j] != 0;
  }
  i += WG; j = i / D4;
  if (i < n_vec && k0 + j < k_end) {
    let at = (row0 + j * p.num_kv_heads) * D4 + i % D4;
    t.k2 = k_cache[at]; t.v2 = v_cache[at]; t.ok2 = key_valid[vb + j] != 0;
  }
  i += WG; j = i / D4;
  if (i < n_vec && k0 + j < k_end) {
    let at = (row0 + j * p.num_kv_heads) * D4 + i % D4;
    t.k3 = k_cache[at]; t.v3 = v_cache[at]; t.ok3 = key_valid[vb + j] != 0;
  }
  if (li < BK && k0 + li < k_end) { t.mk = key_valid[vb + li] != 0; }
  return t;
}

// Padded (key_valid 0) and out-of-split rows are stored as zeros, so whatever the cache holds there
// (even NaN) cannot reach `out` through a zero probability.
fn store_vec(i: u32, k: vec4f, v: vec4f, ok: bool) {
  if (i < BK * D4) {
    let j = i / D4;
    let c = i % D4;
    ks[j * STRIDE + c] = select(vec4f(0.0), k, ok);
    vs[j * D4 + c] = select(vec4f(0.0), v, ok);
  }
}

fn store_tile(t: Tile, li: u32) {
  store_vec(li, t.k0, t.v0, t.ok0);
  store_vec(li + WG, t.k1, t.v1, t.ok1);
  store_vec(li + 2u * WG, t.k2, t.v2, t.ok2);
  store_vec(li + 3u * WG, t.k3, t.v3, t.ok3);
  if (li < BK) { kmask[li] = select(0u, 1u, t.mk); }
}

// Writes head row `row` (= b·H + head), vec4 column c: normalised into `out` when there is one split,
// else the partial (o, then (m, l, 0, 0)) of this split.
fn finish(row: u32, c: u32, split: u32, o: vec4f, l: f32, m: f32) {
  if (p.num_splits == 1u) {
    out[row * D4 + c] = o * select(0.0, 1.0 / l, l > 0.0);
  } else {
    let base = (split * p.batch * p.num_heads + row) * (D4 + 1u);
    partial[base + c] = o;
    if (c == 0u) { partial[base + D4] = vec4f(m, l, 0.0, 0.0); }
  }
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let G = p.group;
  let split = wg.x;
  let hkv = wg.y;
  let b = wg.z;
  let k_begin = split * p.chunk;
  let k_end = min(k_begin + p.chunk, p.kv_len);

  for (var i = li; i < MAX_G * STRIDE; i += WG) {
    let g = i / STRIDE;
    let c = i - g * STRIDE;
    var x = vec4f(0.0);
    if (g < G && c < D4) { x = q[(b * p.num_heads + hkv * G + g) * D4 + c] * p.scale; }
    qs[i] = x;
  }
  if (li < MAX_G) { ms[li] = NEG; }
  var next = load_tile(b, hkv, k_begin, k_end, li);

  // Score phase: key sj, head sg; m is the head's running max (the same in its BK threads).
  let sj = li / MAX_G;
  let sg = li % MAX_G;
  var m = NEG;
  // Value phase: column c, heads g0 and g1 = g0 + WG/D4 (each only while < G).
  let c = li % D4;
  let g0 = li / D4;
  let g1 = g0 + WG / D4;
  let act0 = g0 < G && g0 < WG / D4; // with D4 ∤ 128 the last threads would repeat head WG/D4
  let act1 = g1 < G && g0 < WG / D4;
  var o0 = vec4f(0.0);
  var o1 = vec4f(0.0);
  var l0 = 0.0;
  var l1 = 0.0;

  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    workgroupBarrier(); // the previous tile's K/V and probabilities are no longer read
    store_tile(next, li);
    workgroupBarrier();
    next = load_tile(b, hkv, k0 + BK, k_end, li);

    var s = NEG;
    let key_ok = kmask[sj] != 0u;
    if (sg < G) {
      var acc = 0.0;
      for (var cc = 0u; cc < D4; cc++) { acc += dot(qs[sg * STRIDE + cc], ks[sj * STRIDE + cc]); }
      s = select(NEG, acc, key_ok);
      ss[sg * BK + sj] = s;
    }
    workgroupBarrier();

    if (sg < G) {
      var tile_max = NEG;
      for (var j = 0u; j < BK; j++) { tile_max = max(tile_max, ss[sg * BK + j]); }
      let m_new = max(m, tile_max);
      ps[sg * BK + sj] = select(0.0, exp(s - m_new), key_ok);
      if (sj == 0u) {
        alphas[sg] = exp(m - m_new); // 1 while the head has seen no key (o, l are 0 then)
        ms[sg] = m_new;
      }
      m = m_new;
    }
    workgroupBarrier();

    if (act1) {
      let a0 = alphas[g0];
      let a1 = alphas[g1];
      o0 *= a0;
      l0 *= a0;
      o1 *= a1;
      l1 *= a1;
      for (var j = 0u; j < BK; j++) {
        let v = vs[j * D4 + c];
        let p0 = ps[g0 * BK + j];
        let p1 = ps[g1 * BK + j];
        o0 += p0 * v;
        l0 += p0;
        o1 += p1 * v;
        l1 += p1;
      }
    } else if (act0) {
      let a0 = alphas[g0];
      o0 *= a0;
      l0 *= a0;
      for (var j = 0u; j < BK; j++) {
        let p0 = ps[g0 * BK + j];
        o0 += p0 * vs[j * D4 + c];
        l0 += p0;
      }
    }
  }
  workgroupBarrier(); // ms holds the final maxima (also when the loop ran zero times)

  let row0 = b * p.num_heads + hkv * G;
  if (act0) { finish(row0 + g0, c, split, o0, l0, ms[g0]); }
  if (act1) { finish(row0 + g1, c, split, o1, l1, ms[g1]); }
}
