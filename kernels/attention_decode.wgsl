// Grouped-query attention of ONE new query per sequence (decode, T = 1) over the KV cache, flash-decoding
// style (REFERENCE §7): query head j of sample b attends to cache positions 0 … kv_len−1 whose key_valid is
// 1, reading kv head j / G (G = H / Hkv); softmax(q·kᵀ·Dh^-0.5)·v in f32; a head that sees no valid key
// gives zeros.
// Latency plan: a workgroup owns (split, kv head, sample), i.e. `chunk` consecutive keys of one kv head,
// taken in tiles of BK = WG/4 keys. K and V never pass through workgroup memory: each thread loads its
// share of a tile straight into registers, K in the layout the scores want and V in the layout P·V wants,
// all of a tile's loads issued at once (the next tile's K while this tile's softmax and P·V run), so a
// split of one tile costs about one memory round trip. Each K/V row is read once, as coalesced vec4 runs,
// for all G query heads. Two barriers per tile:
//   scores: thread (key sj = li/4, slice sub = li%4) dots its K columns sub, sub+4, … with every head's
//     query (broadcast from workgroup memory) and stores G partial sums; [barrier]
//   softmax: thread (head sg, key group skg) owns keys skg, skg+KGU, … (KPG of them): it adds the 4
//     partials, keeps its own running max m and sum l, and publishes p = e^(s−m) and the rescale factor
//     e^(m_old−m_new); [barrier]
//   P·V: thread (vec4 column vc = li % D4, key group vkg = li / D4) holds V of its group's keys and
//     accumulates all G heads, o_g = o_g·alpha + Σ p·v.
// At the end the key groups' o (each on its own max) are brought to the workgroup max and summed in two
// rounds through workgroup memory. With num_splits == 1 the row is normalised into `out`; otherwise each
// workgroup writes its unnormalised partial rows (o[Dh], then (m, l, 0, 0)) and attention_decode_combine
// merges the splits. Accumulators and loaded vectors are named private variables, never arrays: NVIDIA
// puts a private array indexed by a loop variable in local memory.
//
// FUSED (decode only, not one_sequence): the attention prologue of kernels/qkv_rope_cache.wgsl folded in,
// one dispatch less a layer. Binding 1 is then the wqkv output [B, Hkv·(G+2)·Dh] (per kv group: G query
// heads, key, value); each workgroup rotates its G queries itself (rope table row of the sample's
// position), and the workgroup whose split holds the new key (cache position kv_len−1) writes the rotated
// key and the value there for later steps while its own tile loads take them from the wqkv output.
//
// Bindings: 1 q [B, H·Dh] f32 (FUSED: qkv [B, Hkv·(G+2)·Dh]), 2 k_cache [B, S, Hkv·Dh] f32 (the kernel
//   `attention_decode+kv_bf16`: bf16x2, read as vec2<u32>, kernels/kv_bf16.wgsl), 3 v_cache likewise,
//   4 key_valid [B, S] i32, 5 out [B, H·Dh] f32,
//   6 partial [num_splits, B·H, Dh+4] f32 (any writable tensor when num_splits == 1),
//   7 rope [P, Dh] f32: per position cos (Dh/2) then sin (Dh/2) (FUSED; any read-only tensor otherwise),
//   8 positions [B] i32 rotary position of each sample's new token (FUSED; any read-only tensor otherwise).
// Params: batch B, seq S, kv_len, num_heads H, num_kv_heads Hkv, chunk (keys per split, ≥ 1), num_splits,
//   scale = Dh^-0.5 (f32), one_sequence: the B query rows are consecutive new tokens of cache sample 0
//   (a follow-up round's chunk), row b attending kv_len + b keys; k_cache/v_cache/key_valid then need
//   only sample 0. max_pos = P (FUSED: positions are clamped to [0, P) like kernels/rope.wgsl).
// Overrides: D4 = Dh/4 (1..32), G = H/Hkv (1..8), WG = 256 or 128 threads (BK = WG/4 keys per tile),
//   PREFETCH: issue the next tile's K loads before this tile's softmax and P·V (else after them),
//   FUSED (D4 even).
// Grid: (num_splits, Hkv, B) workgroups of WG threads.
// Workgroup memory: sm, sized by the overrides (queries G·Dh, partial scores G·BK·16 bytes, p, rescale
//   factors; after the last tile the key groups' o) or SM_MIN vec4 if more, and okm/mm/ll 2.1 KiB. At G = 6,
//   Dh = 128: 9.3 KiB for WG = 128, 14.1 KiB for WG = 256; SM_MIN = 1152 gives 20.1 KiB, two workgroups a
//   multiprocessor on an H100 (PERF.md v51, v54). Features: none.
struct Params {
  batch: u32,
  seq: u32,
  kv_len: u32,
  num_heads: u32,
  num_kv_heads: u32,
  chunk: u32,
  num_splits: u32,
  scale: f32,
  one_sequence: u32,
  max_pos: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> k_cache: array<KvVec4>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<KvVec4>;
@group(0) @binding(4) var<storage, read> key_valid: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> partial: array<vec4f>;
@group(0) @binding(7) var<storage, read> rope: array<vec4f>;
@group(0) @binding(8) var<storage, read> positions: array<i32>;

// #include kv_f32

override D4: u32 = 32u;
override G: u32 = 6u;
override WG: u32 = 256u;
override PREFETCH: bool = true;
override FUSED: bool = false;
override BK: u32 = WG / 4u;
// P·V key groups: one warp-wide row of vec4 columns each (at most 32 groups, so G·KGU ≤ WG softmax
// threads); KPG keys per group; KGU groups hold keys.
override KG: u32 = WG / max(D4, 8u);
override KPG: u32 = (BK + KG - 1u) / KG;
override KGU: u32 = (BK + KPG - 1u) / KPG;

const NEG = -3.0e38; // "no score yet"; masked keys are tracked by flag, never by this value alone
// Regions of sm (vec4 offsets), sized by the overrides: workgroup memory sets how many workgroups a
// multiprocessor holds at once, and a split's chain of tiles is latency-bound.
const QS_AT = 0u; // [G][D4] pre-scaled queries of the group, then 4 zeros: a slice past Dh (D4 % 4 ≠ 0)
// reads up to 3 vec4 past the last head, against zero keys
override QS_N: u32 = G * D4 + 4u;
override PART_AT: u32 = QS_AT + QS_N; // [G][BK] partial scores, component = column slice
override P_AT: u32 = PART_AT + G * BK; // [BK][2] p of heads 0–3 and 4–7
override AL_AT: u32 = P_AT + 2u * BK; // [KGU][2] e^(m_old − m_new) of each key group's heads
// After the last tile, from 0: [ceil(KGU/2)][G][D4] the key groups' o.
override SM_NEED: u32 = max(AL_AT + 2u * KGU, (KGU + 1u) / 2u * G * D4);
// sm's length at least (vec4): the launcher's choice of how many workgroups share a multiprocessor.
override SM_MIN: u32 = 0u;
override SM_LEN: u32 = max(SM_NEED, SM_MIN);
var<workgroup> sm: array<vec4f, SM_LEN>;
var<workgroup> okm: array<u32, 32>; // [KGU] bit jj: key skg + KGU·jj is in the split and valid
var<workgroup> mm: array<f32, 256>; // [KGU][8] each key group's final max
var<workgroup> ll: array<f32, 256>; // [KGU][8] each key group's final Σ e^(s−m)

var<private> bb: u32; // query row (sample, or token of the one sequence when one_sequence)
var<private> cb: u32; // cache sample the row reads
var<private> rpos: u32; // FUSED: rotary position of sample bb's new token (its rope table row)
var<private> hkv: u32;
var<private> kend: u32; // one past the split's last key
var<private> sj: u32; // scores: key of the tile
var<private> sub: u32; // scores: column slice (vec4 columns sub + 4i)
var<private> skg: u32; // softmax: key group
var<private> sg: u32; // softmax: head
var<private> srole: bool;
var<private> vkg: u32; // P·V: key group
var<private> vc: u32; // P·V: vec4 column
var<private> vrole: bool;
var<private> mrun: f32; // softmax: running max of (sg, skg)
var<private> lrun: f32; // softmax: running Σ e^(s − mrun)
// K of key sj, vec4 columns sub + 4i, as the cache stores them (KvVec4): a bf16 cache's words are widened
// where they are used, not where they are loaded, so the next tile's loads stay in flight (widened at the
// load, the thread waited there for them: 9.28 → 9.38 ms a decode step on an H100, PERF.md v43).
var<private> kr0: KvVec4;
var<private> kr1: KvVec4;
var<private> kr2: KvVec4;
var<private> kr3: KvVec4;
var<private> kr4: KvVec4;
var<private> kr5: KvVec4;
var<private> kr6: KvVec4;
var<private> kr7: KvVec4;
// V of keys vkg + KGU·jj, vec4 column vc (as stored, like K).
var<private> vr0: KvVec4;
var<private> vr1: KvVec4;
var<private> vr2: KvVec4;
var<private> vr3: KvVec4;
var<private> vr4: KvVec4;
var<private> vr5: KvVec4;
var<private> vr6: KvVec4;
var<private> vr7: KvVec4;
// o of head g, vec4 column vc, over this key group's keys.
var<private> o0: vec4f;
var<private> o1: vec4f;
var<private> o2: vec4f;
var<private> o3: vec4f;
var<private> o4: vec4f;
var<private> o5: vec4f;
var<private> o6: vec4f;
var<private> o7: vec4f;

// vec4 index of column 0 of key kk of this (sample, kv head), clamped to the split's last key (in bounds).
fn row(kk: u32) -> u32 {
  return ((cb * p.seq + min(kk, kend - 1u)) * p.num_kv_heads + hkv) * D4;
}

// Column sub + 4i of key sj; zero past Dh so the dot with the neighbouring query columns adds nothing.
fn ldk(at: u32, i: u32) -> KvVec4 {
  if (D4 % 4u == 0u || sub + 4u * i < D4) { return k_cache[at + 4u * i]; }
  return KvVec4();
}

// FUSED: the new key (cache position kv_len − 1) is taken from the wqkv output, rotated here, instead of
// from the cache, so the workgroup that writes it there never waits for its own writes.
fn is_new_key(kk: u32) -> bool {
  return FUSED && kk == p.kv_len - 1u;
}

// Column sub + 4i of the new key (zero past Dh, like ldk), as the cache stores it (bf16: rounded), so this
// step attends to what later steps will read.
fn knew(i: u32) -> KvVec4 {
  if (D4 % 4u == 0u || sub + 4u * i < D4) { return kv_narrow4(qkv_col(G, sub + 4u * i)); }
  return KvVec4();
}

// Keys past the split (a split shorter than the tile) are neither loaded nor scored: whole warps skip.
fn load_k(t0: u32) {
  if (t0 + sj >= kend) { return; }
  if (is_new_key(t0 + sj)) {
    kr0 = knew(0u);
    if (D4 > 4u) { kr1 = knew(1u); }
    if (D4 > 8u) { kr2 = knew(2u); }
    if (D4 > 12u) { kr3 = knew(3u); }
    if (D4 > 16u) { kr4 = knew(4u); }
    if (D4 > 20u) { kr5 = knew(5u); }
    if (D4 > 24u) { kr6 = knew(6u); }
    if (D4 > 28u) { kr7 = knew(7u); }
    return;
  }
  let at = row(t0 + sj) + sub;
  kr0 = ldk(at, 0u);
  if (D4 > 4u) { kr1 = ldk(at, 1u); }
  if (D4 > 8u) { kr2 = ldk(at, 2u); }
  if (D4 > 12u) { kr3 = ldk(at, 3u); }
  if (D4 > 16u) { kr4 = ldk(at, 4u); }
  if (D4 > 20u) { kr5 = ldk(at, 5u); }
  if (D4 > 24u) { kr6 = ldk(at, 6u); }
  if (D4 > 28u) { kr7 = ldk(at, 7u); }
}

fn ldv(t0: u32, jj: u32) -> KvVec4 {
  let kk = t0 + vkg + KGU * jj;
  if (is_new_key(kk)) { return kv_narrow4(qkv_col(G + 1u, vc)); }
  return v_cache[row(kk) + vc];
}

fn load_v(t0: u32) {
  if (!vrole) { return; }
  let n = kend - t0; // keys left in the split; group keys past them are skipped (uniform per warp)
  if (vkg < n) { vr0 = ldv(t0, 0u); }
  if (KPG > 1u && vkg + KGU < n) { vr1 = ldv(t0, 1u); }
  if (KPG > 2u && vkg + 2u * KGU < n) { vr2 = ldv(t0, 2u); }
  if (KPG > 3u && vkg + 3u * KGU < n) { vr3 = ldv(t0, 3u); }
  if (KPG > 4u && vkg + 4u * KGU < n) { vr4 = ldv(t0, 4u); }
  if (KPG > 5u && vkg + 5u * KGU < n) { vr5 = ldv(t0, 5u); }
  if (KPG > 6u && vkg + 6u * KGU < n) { vr6 = ldv(t0, 6u); }
  if (KPG > 7u && vkg + 7u * KGU < n) { vr7 = ldv(t0, 7u); }
}

// Bit jj: key skg + KGU·jj of the tile at t0 lies in the tile and the split and is a real token. The load
// is unconditional (clamped) so it can be in flight with the K loads.
fn okbit(t0: u32, jj: u32) -> u32 {
  let j = skg + KGU * jj;
  let valid = key_valid[cb * p.seq + min(t0 + j, kend - 1u)] != 0;
  return select(0u, 1u << jj, (j < BK) & (t0 + j < kend) & valid);
}

fn load_ok(t0: u32) -> u32 {
  if (!srole) { return 0u; }
  var bits = okbit(t0, 0u);
  if (KPG > 1u) { bits |= okbit(t0, 1u); }
  if (KPG > 2u) { bits |= okbit(t0, 2u); }
  if (KPG > 3u) { bits |= okbit(t0, 3u); }
  if (KPG > 4u) { bits |= okbit(t0, 4u); }
  if (KPG > 5u) { bits |= okbit(t0, 5u); }
  if (KPG > 6u) { bits |= okbit(t0, 6u); }
  if (KPG > 7u) { bits |= okbit(t0, 7u); }
  return bits;
}

// Head g's query · key sj over this thread's column slice.
fn qk(g: u32) -> f32 {
  let at = QS_AT + g * D4 + sub;
  var acc = dot(sm[at], kv_widen4(kr0));
  if (D4 > 4u) { acc += dot(sm[at + 4u], kv_widen4(kr1)); }
  if (D4 > 8u) { acc += dot(sm[at + 8u], kv_widen4(kr2)); }
  if (D4 > 12u) { acc += dot(sm[at + 12u], kv_widen4(kr3)); }
  if (D4 > 16u) { acc += dot(sm[at + 16u], kv_widen4(kr4)); }
  if (D4 > 20u) { acc += dot(sm[at + 20u], kv_widen4(kr5)); }
  if (D4 > 24u) { acc += dot(sm[at + 24u], kv_widen4(kr6)); }
  if (D4 > 28u) { acc += dot(sm[at + 28u], kv_widen4(kr7)); }
  return acc;
}

fn scores(t0: u32) {
  if (t0 + sj >= kend) { return; } // its partials stay stale; the key is masked
  let at = PART_AT + sj;
  sm[at][sub] = qk(0u);
  if (G > 1u) { sm[at + BK][sub] = qk(1u); }
  if (G > 2u) { sm[at + 2u * BK][sub] = qk(2u); }
  if (G > 3u) { sm[at + 3u * BK][sub] = qk(3u); }
  if (G > 4u) { sm[at + 4u * BK][sub] = qk(4u); }
  if (G > 5u) { sm[at + 5u * BK][sub] = qk(5u); }
  if (G > 6u) { sm[at + 6u * BK][sub] = qk(6u); }
  if (G > 7u) { sm[at + 7u * BK][sub] = qk(7u); }
}

fn has(bits: u32, jj: u32) -> bool {
  return ((bits >> jj) & 1u) != 0u;
}

// Score of key skg + KGU·jj for head sg; a masked key's partials may be NaN (padded rows), never used.
fn sc(jj: u32, bits: u32) -> f32 {
  if (jj >= KPG) { return NEG; }
  let s = dot(sm[PART_AT + sg * BK + skg + KGU * jj], vec4f(1.0));
  return select(NEG, s, has(bits, jj));
}

// e^(s − m) of key skg + KGU·jj, stored for P·V; 0 for a masked key even while m is still NEG.
fn put_p(jj: u32, s: f32, m: f32, bits: u32) -> f32 {
  let j = skg + KGU * jj;
  if (jj >= KPG || (KPG * KGU != BK && j >= BK)) { return 0.0; }
  let e = select(0.0, exp(s - m), has(bits, jj));
  sm[P_AT + 2u * j + sg / 4u][sg % 4u] = e;
  return e;
}

fn softmax(bits: u32) {
  let s0 = sc(0u, bits);
  let s1 = sc(1u, bits);
  let s2 = sc(2u, bits);
  let s3 = sc(3u, bits);
  let s4 = sc(4u, bits);
  let s5 = sc(5u, bits);
  let s6 = sc(6u, bits);
  let s7 = sc(7u, bits);
  let m_new = max(mrun, max(max(max(s0, s1), max(s2, s3)), max(max(s4, s5), max(s6, s7))));
  let alpha = exp(mrun - m_new); // 1 while the group has seen no key (its o and l are 0 then)
  let e = (put_p(0u, s0, m_new, bits) + put_p(1u, s1, m_new, bits)) +
    (put_p(2u, s2, m_new, bits) + put_p(3u, s3, m_new, bits)) +
    ((put_p(4u, s4, m_new, bits) + put_p(5u, s5, m_new, bits)) +
      (put_p(6u, s6, m_new, bits) + put_p(7u, s7, m_new, bits)));
  lrun = lrun * alpha + e;
  mrun = m_new;
  sm[AL_AT + 2u * skg + sg / 4u][sg % 4u] = alpha;
  if (sg == 0u) { okm[skg] = bits; }
}

// o_g += p[j][g] · V[j] for key j = vkg + KGU·jj. A padded, out-of-split or out-of-tile key is skipped
// (not multiplied by p = 0), so whatever the cache holds there (even NaN) cannot reach `out`; the branch
// is uniform across a warp of one key group.
fn pv(jj: u32, x: vec4f, bits: u32) {
  if (!has(bits, jj)) { return; }
  let j = vkg + KGU * jj;
  let pa = sm[P_AT + 2u * j];
  o0 = fma(vec4f(pa.x), x, o0);
  if (G > 1u) { o1 = fma(vec4f(pa.y), x, o1); }
  if (G > 2u) { o2 = fma(vec4f(pa.z), x, o2); }
  if (G > 3u) { o3 = fma(vec4f(pa.w), x, o3); }
  if (G > 4u) {
    let pb = sm[P_AT + 2u * j + 1u];
    o4 = fma(vec4f(pb.x), x, o4);
    if (G > 5u) { o5 = fma(vec4f(pb.y), x, o5); }
    if (G > 6u) { o6 = fma(vec4f(pb.z), x, o6); }
    if (G > 7u) { o7 = fma(vec4f(pb.w), x, o7); }
  }
}

fn scale_o(a: vec4f, b: vec4f) {
  o0 *= a.x;
  if (G > 1u) { o1 *= a.y; }
  if (G > 2u) { o2 *= a.z; }
  if (G > 3u) { o3 *= a.w; }
  if (G > 4u) { o4 *= b.x; }
  if (G > 5u) { o5 *= b.y; }
  if (G > 6u) { o6 *= b.z; }
  if (G > 7u) { o7 *= b.w; }
}

fn values() {
  if (!vrole) { return; }
  var ab = vec4f(1.0);
  if (G > 4u) { ab = sm[AL_AT + 2u * vkg + 1u]; }
  scale_o(sm[AL_AT + 2u * vkg], ab);
  let bits = okm[vkg];
  pv(0u, kv_widen4(vr0), bits);
  if (KPG > 1u) { pv(1u, kv_widen4(vr1), bits); }
  if (KPG > 2u) { pv(2u, kv_widen4(vr2), bits); }
  if (KPG > 3u) { pv(3u, kv_widen4(vr3), bits); }
  if (KPG > 4u) { pv(4u, kv_widen4(vr4), bits); }
  if (KPG > 5u) { pv(5u, kv_widen4(vr5), bits); }
  if (KPG > 6u) { pv(6u, kv_widen4(vr6), bits); }
  if (KPG > 7u) { pv(7u, kv_widen4(vr7), bits); }
}

// The split's max of head g: over its key groups.
fn head_max(g: u32) -> f32 {
  var m = NEG;
  for (var kg = 0u; kg < KGU; kg++) { m = max(m, mm[kg * 8u + g]); }
  return m;
}

// e^(m_group − m_split) of head g for this key group (1 for heads past G: never used).
fn group_scale(g: u32) -> f32 {
  if (g >= G) { return 1.0; }
  return exp(mm[vkg * 8u + g] - head_max(g));
}

fn put_o(slot: u32) {
  let at = slot * G * D4 + vc;
  sm[at] = o0;
  if (G > 1u) { sm[at + D4] = o1; }
  if (G > 2u) { sm[at + 2u * D4] = o2; }
  if (G > 3u) { sm[at + 3u * D4] = o3; }
  if (G > 4u) { sm[at + 4u * D4] = o4; }
  if (G > 5u) { sm[at + 5u * D4] = o5; }
  if (G > 6u) { sm[at + 6u * D4] = o6; }
  if (G > 7u) { sm[at + 7u * D4] = o7; }
}

fn add_o(slot: u32) {
  let at = slot * G * D4 + vc;
  o0 += sm[at];
  if (G > 1u) { o1 += sm[at + D4]; }
  if (G > 2u) { o2 += sm[at + 2u * D4]; }
  if (G > 3u) { o3 += sm[at + 3u * D4]; }
  if (G > 4u) { o4 += sm[at + 4u * D4]; }
  if (G > 5u) { o5 += sm[at + 5u * D4]; }
  if (G > 6u) { o6 += sm[at + 6u * D4]; }
  if (G > 7u) { o7 += sm[at + 7u * D4]; }
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

// FUSED: vec4 column c of slot `slot` (query head g < G, key G, value G+1) of kv group hkv in sample bb's
// qkv row; rotated (rotate_half: pairs c, c ± D4/2 by the angle of the row's position) unless it is V.
fn qkv_col(slot: u32, c: u32) -> vec4f {
  let base = ((bb * p.num_kv_heads + hkv) * (G + 2u) + slot) * D4;
  let x = q[base + c];
  if (slot == G + 1u) { return x; }
  let half = D4 / 2u;
  let j = c % half;
  let cs = rope[rpos * D4 + j];
  let sn = rope[rpos * D4 + half + j];
  if (c < half) { return x * cs - q[base + c + half] * sn; }
  return x * cs + q[base + c - half] * sn;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let split = wg.x;
  hkv = wg.y;
  bb = wg.z;
  cb = select(bb, 0u, p.one_sequence != 0u);
  // one_sequence: row bb is the sequence's new token bb, which sees one key more than the row before.
  let kv_len = p.kv_len + select(0u, bb, p.one_sequence != 0u);
  let k_begin = split * p.chunk;
  // A split past a row's last key (one_sequence only) is empty: its partial is (0, m = NEG, l = 0).
  kend = max(min(k_begin + p.chunk, kv_len), min(k_begin, kv_len));
  sj = li / 4u;
  sub = li % 4u;
  skg = li % KGU;
  sg = li / KGU;
  srole = sg < G;
  vkg = li / D4;
  vc = li % D4;
  vrole = vkg < KGU;
  mrun = NEG;

  // FUSED: the split holding the new key writes it (rotated) and its value into the cache for the steps
  // after this one; its own tile loads take them from the wqkv output instead (is_new_key), so no barrier.
  if (FUSED) { rpos = u32(clamp(positions[bb], 0, i32(p.max_pos) - 1)); }
  let last = p.kv_len - 1u; // FUSED is never one_sequence: every row's new key is at kv_len − 1
  if (FUSED && split * p.chunk <= last && last < (split + 1u) * p.chunk) {
    for (var c = li; c < D4; c += WG) {
      let at = ((cb * p.seq + last) * p.num_kv_heads + hkv) * D4 + c;
      k_cache[at] = kv_narrow4(qkv_col(G, c));
      v_cache[at] = kv_narrow4(qkv_col(G + 1u, c));
    }
  }
  load_k(k_begin);
  var bits = load_ok(k_begin);
  load_v(k_begin);
  let q0 = (bb * p.num_heads + hkv * G) * D4;
  for (var i = li; i < QS_N; i += WG) {
    var x = vec4f(0.0);
    if (i < G * D4) {
      if (FUSED) {
        x = qkv_col(i / D4, i % D4) * p.scale;
      } else {
        x = q[q0 + i] * p.scale;
      }
    }
    sm[QS_AT + i] = x;
  }
  workgroupBarrier();

  for (var t0 = k_begin; t0 < kend; t0 += BK) {
    scores(t0);
    let more = t0 + BK < kend;
    var next_bits = 0u;
    if (PREFETCH && more) {
      load_k(t0 + BK);
      next_bits = load_ok(t0 + BK);
    }
    workgroupBarrier();
    if (srole) { softmax(bits); }
    workgroupBarrier(); // p, the rescale factors and okm are published
    values();
    if (more) {
      if (!PREFETCH) {
        load_k(t0 + BK);
        next_bits = load_ok(t0 + BK);
      }
      load_v(t0 + BK);
    }
    bits = next_bits;
  }

  if (srole) {
    mm[skg * 8u + sg] = mrun;
    ll[skg * 8u + sg] = lrun;
  }
  workgroupBarrier(); // p and the rescale factors are consumed: sm takes the key groups' o; mm, ll are final

  let half = (KGU + 1u) / 2u;
  if (vrole) {
    let a = vec4f(group_scale(0u), group_scale(1u), group_scale(2u), group_scale(3u));
    let b = vec4f(group_scale(4u), group_scale(5u), group_scale(6u), group_scale(7u));
    scale_o(a, b);
    if (vkg >= half) { put_o(vkg - half); }
  }
  workgroupBarrier();
  if (vrole && vkg + half < KGU) { add_o(vkg); }
  workgroupBarrier();
  if (vrole && vkg < half) { put_o(vkg); }
  workgroupBarrier();

  // Output (head g, column c): sum the remaining key-group slots; l over every key group on the same max.
  for (var i = li; i < G * D4; i += WG) {
    let g = i / D4;
    let c = i - g * D4;
    var o = vec4f(0.0);
    for (var s = 0u; s < half; s++) { o += sm[(s * G + g) * D4 + c]; }
    let m = head_max(g);
    var l = 0.0;
    for (var kg = 0u; kg < KGU; kg++) { l += ll[kg * 8u + g] * exp(mm[kg * 8u + g] - m); }
    finish(bb * p.num_heads + hkv * G + g, c, split, o, l, m);
  }
}
