// Causal grouped-query attention of a prompt chunk over the KV cache (InternLM2, REFERENCE §7), the same
// contract as attention_causal.wgsl: query t of sample b sits at cache position start_pos + t and attends
// to positions 0 … start_pos + t whose key_valid is 1; query head j reads kv head j / G (G = H / Hkv);
// out = softmax(q·kᵀ·Dh^-0.5)·v in f32; rows that see no valid key come out as zeros.
// For prompt passes: a prompt of its own fills the GPU with query tiles; a few new tokens over a kept
// conversation split the keys (below). Decode steps and chunks of ≤ 8 tokens keep attention_decode, short
// prompts from position 0 attention_causal.
// The register blocking of attention_full.wgsl (read its header first): a workgroup owns BQ query rows and
// streams keys in blocks of BK = 32; thread (ty, tx) owns S rows ty + RS·i × keys tx + 8j (i, j < 4) and O
// rows ty + RS·i × vec4 columns tx + 8c, Q and K staged 8 vec4 columns at a time, P through workgroup
// memory, online softmax. What differs:
//   rows: tile row R is (t, g) = (R / GR, R % GR) over GR = heads_per_tile query heads of one kv group:
//     GR = 1 gives a tile one head's tokens, GR = G stages each K/V block once for the whole group and
//     narrows the token span of a tile (a smaller diagonal block);
//   keys: 0 … start_pos + the tile's last token, so no block above the diagonal is visited. A key past
//     a row's position or with key_valid 0 gets score NEG and probability 0 by select, and its K/V rows are
//     staged as zeros without being read, so NaN or garbage in padding rows cannot reach the output;
//   order: wg.y counts tiles from the last (most keys) down, so where the GPU launches workgroups in index
//     order the longest start first and the short ones fill the tail of the grid;
//   split keys (partials = 1; a few new tokens over a long kept conversation, where the tiles alone are a
//     few dozen workgroups each walking every key): workgroup z = b·num_splits + split visits only keys
//     split·chunk … of its tile's range (chunk a multiple of BK, so no block straddles two splits) and writes
//     each row's unnormalised o, running max m and sum l to `partial`, which
//     kernels/attention_causal_combine.wgsl merges; a split past a tile's causal range writes l = 0. (One
//     split may write partials too: the passes of a kept prompt scratch then record the same dispatches
//     whatever their length, src/model/prompt_scratch_pool.ts.)
// Accumulators and staging registers are named variables, never arrays indexed by loop variables (NVIDIA
// puts those in local memory); inner steps are unrolled by calls with constant arguments.
//
// Bindings: 1 q [B·T, H·Dh] f32 (RoPE applied), 2 k_cache [B, S, Hkv·Dh] f32, 3 v_cache [B, S, Hkv·Dh] f32
//   (both already holding the chunk's keys/values; the kernel `attention_prefill+kv_bf16`: bf16x2, read as
//   vec2<u32>, kernels/kv_bf16.wgsl), 4 key_valid [B, S] i32 (0 = padding), 5 out [B·T, H·Dh]
//   f32, 6 partial [num_splits, B·T·H, Dh+2] f32 (any writable tensor without partials). q, caches and
//   out are read as vec4: Dh % 4 == 0, Dh ≤ 128.
// Params: tokens T, num_heads H, num_kv_heads Hkv, head_dim Dh (unread: the D4 override carries it), seq S,
//   start_pos (start_pos + T ≤ S), heads_per_tile GR (1 or G), scale = Dh^-0.5 (f32), chunk (keys a
//   split, a multiple of 32), num_splits, partials (1: rows go to `partial`, else normalised to `out`).
// Overrides: D4 = Dh / 4 (must match head_dim); BQ = query rows per workgroup, 64 or 32; PREFETCH: load the
//   next stage into registers while this one computes.
// Grid: (H / GR, ceil(T·GR / BQ), B·num_splits) workgroups of 2·BQ threads; ty = li / 8 < BQ / 4, tx = li % 8.
// Workgroup memory (BQ = 64 / 32): qk (BQ + 32) × 9 vec4 = 13.5 / 9 KiB, vs 32 × 32 vec4 = 16 KiB,
//   red BQ × 8 f32 = 2 / 1 KiB, kmask 32 u32 = 128 B: 31.6 / 26.1 KiB, inside llvmpipe's 32 KiB.
// Features: none.
struct Params {
  tokens: u32,
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  seq: u32,
  start_pos: u32,
  heads_per_tile: u32,
  scale: f32,
  chunk: u32,
  num_splits: u32,
  partials: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k_cache: array<KvVec4>;
@group(0) @binding(3) var<storage, read> v_cache: array<KvVec4>;
@group(0) @binding(4) var<storage, read> key_valid: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

// #include flash_tile
// #include kv_f32

const NONE = 0xffffffffu; // q/out index of a tile row past the last token

var<workgroup> kmask: array<u32, BK>; // [key] 1: inside the tile's range and key_valid

var<private> kstride: u32; // vec4s per cache row (Hkv·Dh/4)
var<private> kv0: u32; // vec4 index of (sample b, position 0, kv head) in k_cache and v_cache
var<private> valid0: u32; // b·S: sample b's row of key_valid
var<private> kend: u32; // the tile visits keys 0 … kend − 1
// Per owned row i (tile row ty + RS·i): vec4 index of its (b, t, head) row in q and out (NONE past T), and
// the last key position it may see.
var<private> qa0: u32;
var<private> qa1: u32;
var<private> qa2: u32;
var<private> qa3: u32;
var<private> lim0: u32;
var<private> lim1: u32;
var<private> lim2: u32;
var<private> lim3: u32;
// The staged block's keys ty + RS·u (u < KR) are in range and valid; set with its first stage.
var<private> kf0: bool;
var<private> kf1: bool;
var<private> kf2: bool;
var<private> kf3: bool;

fn keyOk(pos: u32) -> bool {
  return pos < kend && key_valid[valid0 + pos] != 0;
}

// Zeros past T, past Dh and for masked keys, so they add nothing to S and P·V.
fn ldq(at: u32, col: u32) -> vec4f {
  if (at != NONE && col < D4) { return q[at + col] * p.scale; }
  return vec4f(0.0);
}
fn ldk(ok: bool, pos: u32, col: u32) -> vec4f {
  if (ok && col < D4) { return kv_widen4(k_cache[kv0 + pos * kstride + col]); }
  return vec4f(0.0);
}
fn ldv(ok: bool, pos: u32, col: u32) -> vec4f {
  if (ok && col < D4) { return kv_widen4(v_cache[kv0 + pos * kstride + col]); }
  return vec4f(0.0);
}

// Stage ch of key block kb: columns 8·ch.. of the workgroup's Q rows and of keys kb..kb+31.
fn issue(kb: u32, ch: u32) {
  let col = ch * DC + tx;
  pq0 = ldq(qa0, col);
  pq1 = ldq(qa1, col);
  pq2 = ldq(qa2, col);
  pq3 = ldq(qa3, col);
  let kr = kb + ty;
  if (ch == 0u) {
    kf0 = keyOk(kr);
    kf1 = keyOk(kr + RS);
    if (KR > 2u) {
      kf2 = keyOk(kr + 2u * RS);
      kf3 = keyOk(kr + 3u * RS);
    }
  }
  pk0 = ldk(kf0, kr, col);
  pk1 = ldk(kf1, kr + RS, col);
  pv0 = ldv(kf0, kr, col);
  pv1 = ldv(kf1, kr + RS, col);
  if (KR > 2u) {
    pk2 = ldk(kf2, kr + 2u * RS, col);
    pk3 = ldk(kf3, kr + 3u * RS, col);
    pv2 = ldv(kf2, kr + 2u * RS, col);
    pv3 = ldv(kf3, kr + 3u * RS, col);
  }
}

fn store(ch: u32) {
  storeStage(ch);
  if (ch == 0u && tx == 0u) {
    kmask[ty] = select(0u, 1u, kf0);
    kmask[ty + RS] = select(0u, 1u, kf1);
    if (KR > 2u) {
      kmask[ty + 2u * RS] = select(0u, 1u, kf2);
      kmask[ty + 3u * RS] = select(0u, 1u, kf3);
    }
  }
}

fn rowSum(row: u32) -> f32 {
  return dot(red[row][0] + red[row][1], vec4f(1.0));
}

// A row that saw no valid key has sum 0 and zero accumulators: it writes zeros.
fn writeRow(at: u32, sum: f32, c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f) {
  if (at == NONE) { return; }
  let inv = select(0.0, 1.0 / sum, sum > 0.0);
  if (tx < D4) { out[at + tx] = c0 * inv; }
  if (tx + 8u < D4) { out[at + tx + 8u] = c1 * inv; }
  if (tx + 16u < D4) { out[at + tx + 16u] = c2 * inv; }
  if (tx + 24u < D4) { out[at + tx + 24u] = c3 * inv; }
}

// The same row unnormalised, for the combine pass: o, then m and l (l = 0: the split saw no key of it).
fn writePartial(at: u32, base0: u32, m: f32, sum: f32, c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f) {
  if (at == NONE) { return; }
  let width = 4u * D4 + 2u;
  let base = base0 + (at / D4) * width;
  if (tx < D4) { putPartial(base + 4u * tx, c0); }
  if (tx + 8u < D4) { putPartial(base + 4u * (tx + 8u), c1); }
  if (tx + 16u < D4) { putPartial(base + 4u * (tx + 16u), c2); }
  if (tx + 24u < D4) { putPartial(base + 4u * (tx + 24u), c3); }
  if (tx == 0u) {
    partial[base + 4u * D4] = m;
    partial[base + 4u * D4 + 1u] = sum;
  }
}
fn putPartial(at: u32, x: vec4f) {
  partial[at] = x.x;
  partial[at + 1u] = x.y;
  partial[at + 2u] = x.z;
  partial[at + 3u] = x.w;
}

// Tile row R of sample b, heads h0 …: its q/out row and the last key position it may see.
fn rowAt(R: u32, b: u32, h0: u32) -> u32 {
  let t = R / p.heads_per_tile;
  if (t >= p.tokens) { return NONE; }
  return ((b * p.tokens + t) * p.num_heads + h0 + R % p.heads_per_tile) * D4;
}
fn rowLimit(R: u32) -> u32 {
  return p.start_pos + min(R / p.heads_per_tile, p.tokens - 1u);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) grid: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  tx = li % 8u;
  ty = li / 8u;
  let b = wg.z / p.num_splits;
  let split = wg.z % p.num_splits;
  let h0 = wg.x * p.heads_per_tile; // the tile's first query head
  let hkv = h0 / (p.num_heads / p.num_kv_heads);
  kstride = p.num_kv_heads * D4;
  kv0 = b * p.seq * kstride + hkv * D4;
  valid0 = b * p.seq;
  let tile0 = (grid.y - 1u - wg.y) * BQ; // the tile's first row
  kend = rowLimit(tile0 + BQ - 1u) + 1u;
  let kfirst = split * p.chunk;
  let kstop = min(kfirst + p.chunk, kend);
  let r0 = ty;
  let r1 = ty + RS;
  let r2 = ty + 2u * RS;
  let r3 = ty + 3u * RS;
  qa0 = rowAt(tile0 + r0, b, h0);
  qa1 = rowAt(tile0 + r1, b, h0);
  qa2 = rowAt(tile0 + r2, b, h0);
  qa3 = rowAt(tile0 + r3, b, h0);
  lim0 = rowLimit(tile0 + r0);
  lim1 = rowLimit(tile0 + r1);
  lim2 = rowLimit(tile0 + r2);
  lim3 = rowLimit(tile0 + r3);

  startRows();

  if (PREFETCH) { issue(kfirst, 0u); }
  for (var kb = kfirst; kb < kstop; kb += BK) {
    s0 = vec4f(0.0);
    s1 = vec4f(0.0);
    s2 = vec4f(0.0);
    s3 = vec4f(0.0);
    for (var ch = 0u; ch < NCH; ch++) {
      if (!PREFETCH) { issue(kb, ch); }
      workgroupBarrier(); // the last stage's Q/K (at ch 0: the last block's P, V, kmask) are no longer read
      store(ch);
      workgroupBarrier();
      if (PREFETCH) {
        if (ch + 1u < NCH) {
          issue(kb, ch + 1u);
        } else if (kb + BK < kstop) {
          issue(kb + BK, 0u);
        }
      }
      scoreStage();
    }

    // Every row has its own causal limit, so the mask is a per-row select (keys past a row's limit but
    // inside the tile's range are real, staged keys).
    let kp = vec4u(kb + tx) + vec4u(0u, 8u, 16u, 24u);
    let kv = vec4<bool>(kmask[tx] != 0u, kmask[tx + 8u] != 0u, kmask[tx + 16u] != 0u,
                        kmask[tx + 24u] != 0u);
    let ok0 = kv & (kp <= vec4u(lim0));
    let ok1 = kv & (kp <= vec4u(lim1));
    let ok2 = kv & (kp <= vec4u(lim2));
    let ok3 = kv & (kp <= vec4u(lim3));
    s0 = select(vec4f(NEG), s0, ok0);
    s1 = select(vec4f(NEG), s1, ok1);
    s2 = select(vec4f(NEG), s2, ok2);
    s3 = select(vec4f(NEG), s3, ok3);
    putRed(r0, hmax(s0));
    putRed(r1, hmax(s1));
    putRed(r2, hmax(s2));
    putRed(r3, hmax(s3));
    workgroupBarrier(); // also: every thread is done reading the Q/K stage that P overwrites
    let mn0 = max(m0, hmax(max(red[r0][0], red[r0][1])));
    let mn1 = max(m1, hmax(max(red[r1][0], red[r1][1])));
    let mn2 = max(m2, hmax(max(red[r2][0], red[r2][1])));
    let mn3 = max(m3, hmax(max(red[r3][0], red[r3][1])));
    // A row with no valid key yet has mn = NEG, where exp(s − mn) of a masked key would be 1.
    let e0 = select(vec4f(0.0), exp(s0 - mn0), ok0);
    let e1 = select(vec4f(0.0), exp(s1 - mn1), ok1);
    let e2 = select(vec4f(0.0), exp(s2 - mn2), ok2);
    let e3 = select(vec4f(0.0), exp(s3 - mn3), ok3);
    acceptBlock(e0, e1, e2, e3, mn0, mn1, mn2, mn3);
  }
  putRowSums();
  if (p.partials == 0u) {
    writeRow(qa0, rowSum(r0), o00, o01, o02, o03);
    writeRow(qa1, rowSum(r1), o10, o11, o12, o13);
    writeRow(qa2, rowSum(r2), o20, o21, o22, o23);
    writeRow(qa3, rowSum(r3), o30, o31, o32, o33);
    return;
  }
  let base0 = split * (grid.z / p.num_splits) * p.tokens * p.num_heads * (4u * D4 + 2u);
  writePartial(qa0, base0, m0, rowSum(r0), o00, o01, o02, o03);
  writePartial(qa1, base0, m1, rowSum(r1), o10, o11, o12, o13);
  writePartial(qa2, base0, m2, rowSum(r2), o20, o21, o22, o23);
  writePartial(qa3, base0, m3, rowSum(r3), o30, o31, o32, o33);
}
