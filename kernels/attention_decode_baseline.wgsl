// The attention_decode kernel before the register-resident rewrite, kept only as
// scripts/bench_attention_decode.ts's baseline (launched nowhere else; same bindings, the old Params).
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
//   g = li % 8). Value phase: thread = (column c = li % D4, key group kg = li / D4) accumulating all 8 head
//   slots, so one V read from workgroup memory feeds every head (probabilities are read as vec4s of 4
//   heads); the key groups are summed once at the end.
// Workgroup memory ≈ 26 KiB. Features: none.
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
// K tile [BK][STRIDE] at 0, V tile [BK][D4] at V_AT; after the last tile, the value phase's per-key-group
// sums [KG][MAX_G][D4] (KG·D4 ≤ WG, so ≤ 1024 vec4s).
var<workgroup> kv: array<vec4f, 1040>;
var<workgroup> ss: array<f32, 136>;     // [MAX_G][SS_STRIDE] scores
var<workgroup> ps: array<vec4f, 32>;    // [BK][MAX_G/4] probabilities e^(s − m), heads ≥ G stay 0
var<workgroup> kmask: array<u32, 16>;   // [BK] key inside this split and valid
var<workgroup> alphas: array<vec4f, 2>; // [MAX_G/4] e^(m_old − m_new) of this tile
var<workgroup> ms: array<f32, 8>;       // [MAX_G] running max
var<workgroup> lsum: array<f32, 1024>;  // [KG][MAX_G] the value phase's per-key-group Σp

const V_AT = 528u;
const SS_STRIDE = 17u; // the 8 heads' score rows a warp reads start in different banks

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
    kv[j * STRIDE + c] = select(vec4f(0.0), k, ok);
    kv[V_AT + j * D4 + c] = select(vec4f(0.0), v, ok);
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
  if (li < 2u * BK) { ps[li] = vec4f(0.0); }
  if (li < 2u) { alphas[li] = vec4f(1.0); }
  var next = load_tile(b, hkv, k_begin, k_end, li);

  // Score phase: key sj, head sg; m is the head's running max (the same in its BK threads).
  let sj = li / MAX_G;
  let sg = li % MAX_G;
  var m = NEG;
  // Value phase: column c, key group kg (keys kg, kg + KG, …) for all MAX_G heads at once, so each V vec4
  // read from workgroup memory feeds 8 heads; o_g and l (4 heads per vec4) are this key group's sums.
  let KG = WG / D4;
  let c = li % D4;
  let kg = li / D4;
  let in_value = kg < KG; // with D4 ∤ 128 the last threads idle
  var o0 = vec4f(0.0); var o1 = vec4f(0.0); var o2 = vec4f(0.0); var o3 = vec4f(0.0);
  var o4 = vec4f(0.0); var o5 = vec4f(0.0); var o6 = vec4f(0.0); var o7 = vec4f(0.0);
  var la = vec4f(0.0); // heads 0..3
  var lb = vec4f(0.0); // heads 4..7

  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    workgroupBarrier(); // the previous tile's K/V and probabilities are no longer read
    store_tile(next, li);
    workgroupBarrier();
    next = load_tile(b, hkv, k0 + BK, k_end, li);

    var s = NEG;
    let key_ok = kmask[sj] != 0u;
    if (sg < G) {
      var acc = 0.0;
      for (var cc = 0u; cc < D4; cc++) { acc += dot(qs[sg * STRIDE + cc], kv[sj * STRIDE + cc]); }
      s = select(NEG, acc, key_ok);
      ss[sg * SS_STRIDE + sj] = s;
    }
    workgroupBarrier();

    if (sg < G) {
      var tile_max = NEG;
      for (var j = 0u; j < BK; j++) { tile_max = max(tile_max, ss[sg * SS_STRIDE + j]); }
      let m_new = max(m, tile_max);
      ps[sj * 2u + sg / 4u][sg % 4u] = select(0.0, exp(s - m_new), key_ok);
      if (sj == 0u) {
        alphas[sg / 4u][sg % 4u] = exp(m - m_new); // 1 while the head has seen no key (o, l are 0 then)
        ms[sg] = m_new;
      }
      m = m_new;
    }
    workgroupBarrier();

    if (in_value) {
      let aa = alphas[0];
      let ab = alphas[1];
      o0 *= aa.x; o1 *= aa.y; o2 *= aa.z; o3 *= aa.w;
      o4 *= ab.x; o5 *= ab.y; o6 *= ab.z; o7 *= ab.w;
      la *= aa;
      lb *= ab;
      for (var j = kg; j < BK; j += KG) {
        let v = kv[V_AT + j * D4 + c];
        let pa = ps[j * 2u];
        let pb = ps[j * 2u + 1u];
        o0 += pa.x * v; o1 += pa.y * v; o2 += pa.z * v; o3 += pa.w * v;
        o4 += pb.x * v; o5 += pb.y * v; o6 += pb.z * v; o7 += pb.w * v;
        la += pa;
        lb += pb;
      }
    }
  }
  workgroupBarrier(); // the last tile is consumed: kv is free for the key groups' sums; ms is final

  if (in_value) {
    let at = kg * MAX_G * D4 + c;
    kv[at] = o0; kv[at + D4] = o1; kv[at + 2u * D4] = o2; kv[at + 3u * D4] = o3;
    kv[at + 4u * D4] = o4; kv[at + 5u * D4] = o5; kv[at + 6u * D4] = o6; kv[at + 7u * D4] = o7;
    if (c == 0u) {
      lsum[kg * MAX_G] = la.x; lsum[kg * MAX_G + 1u] = la.y; lsum[kg * MAX_G + 2u] = la.z;
      lsum[kg * MAX_G + 3u] = la.w; lsum[kg * MAX_G + 4u] = lb.x; lsum[kg * MAX_G + 5u] = lb.y;
      lsum[kg * MAX_G + 6u] = lb.z; lsum[kg * MAX_G + 7u] = lb.w;
    }
  }
  workgroupBarrier();

  // Output (head g, column c) pairs li and li + WG: sum the key groups.
  for (var i = li; i < G * D4; i += WG) {
    let g = i / D4;
    let cc = i - g * D4;
    var o = vec4f(0.0);
    var l = 0.0;
    for (var k = 0u; k < KG; k++) {
      o += kv[(k * MAX_G + g) * D4 + cc];
      l += lsum[k * MAX_G + g];
    }
    finish(b * p.num_heads + hkv * G + g, cc, split, o, l, ms[g]);
  }
}
