// Bidirectional multi-head attention (InternViT, REFERENCE §6): per tile b and head h,
//   out = softmax((q · Dh^-0.5) · kᵀ) · v   over all T tokens of the tile, no mask.
// Flash attention with GEMM-style register blocking (f32 FMA only: NVIDIA's Vulkan driver has no subgroups
// and f16 would cost precision). A workgroup owns BQ query rows of one (b, h) and streams the keys in blocks
// of BK = 32, so the T×T score matrix never exists. Per key block:
//   S = Q·Kᵀ [BQ × 32]: thread (ty, tx) owns query rows ty + RS·i and keys tx + 8j (i, j < 4), summed over
//     Dh in stages of 8 vec4 columns of Q and K staged through workgroup memory;
//   online softmax: running max m and sum l per row, the block's row max combined through `red`;
//   O += P·V [BQ × Dh]: the same thread owns rows ty + RS·i × vec4 columns tx + 8c (c < 4), i.e. 64 f32
//     accumulators, with P (the exponentiated S) passed through workgroup memory.
// Both products load 8 vec4 from workgroup memory per 64 FMAs (the 16-row kernel loaded 20), and what one
// warp loads is 4 rows or 8 keys broadcast to the other lanes, so FMA issue rather than shared-memory
// bandwidth should set the pace. Q does not fit in 32 KiB next to K and V, so its 8-column stage is re-read
// (from L1/L2) for every key block. Accumulators and staging registers are named variables, never arrays:
// NVIDIA puts a private array indexed by a loop variable in local memory. Inner steps are unrolled by hand
// (calls with constant arguments) so workgroup-memory addresses differ by compile-time constants.
//
// Bindings: 1 q [B·T, H·Dh] f32, 2 k [B·T, H·Dh] f32, 3 v [B·T, H·Dh] f32, 4 out [B·T, H·Dh] f32
//   (all read as vec4: Dh % 4 == 0, Dh ≤ 128).
// Params: tokens T, num_heads H, head_dim Dh (unread: the D4 override carries it), scale = Dh^-0.5 (f32).
// Overrides: D4 = Dh / 4 (must match head_dim); BQ = query rows per workgroup, 64 or 32; PREFETCH: load the
//   next stage into registers while this one computes (more registers, hides L2 latency).
// Grid: (ceil(T / BQ), H, B) workgroups of 2·BQ threads; ty = li / 8 < BQ / 4, tx = li % 8.
// Workgroup memory (BQ = 64 / 32): qk (BQ + 32) × 9 vec4 = 13.5 / 9 KiB (Q and K stage; P after the scores),
//   vs 32 × 32 vec4 = 16 KiB (V block), red BQ × 8 f32 = 2 / 1 KiB: 31.5 / 26 KiB, inside llvmpipe's 32 KiB.
// Features: none.
struct Params { tokens: u32, num_heads: u32, head_dim: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;

override D4: u32 = 32u;
override BQ: u32 = 64u;
override PREFETCH: bool = true;
override RS: u32 = BQ / 4u; // row groups; also the row step between a thread's query rows
override WG: u32 = 2u * BQ;
override KR: u32 = BK / RS; // K and V rows a thread stages per stage: 2 (BQ 64) or 4 (BQ 32)
override NCH: u32 = (D4 + DC - 1u) / DC; // stages per key block

const BK = 32u;
const DC = 8u; // vec4 columns per stage: one per tx
const NEG = -3.0e38;

// Rows 0..BQ-1: Q stage, then P [BQ][32 keys as 8 vec4]; rows BQ..BQ+31: K stage. Row stride 9 vec4 so
// the 4 rows (Q, P) or 8 keys (K) one warp reads per step fall in different banks.
var<workgroup> qk: array<array<vec4f, 9>, BQ + BK>;
var<workgroup> vs: array<array<vec4f, 32>, BK>; // [key][Dh/4]; a warp reads 8 consecutive vec4 of one key
var<workgroup> red: array<array<vec4f, 2>, BQ>; // [row][tx]: per-thread row max, at the end row sum

var<private> tx: u32;
var<private> ty: u32;
var<private> tok: u32;
var<private> rstride: u32; // vec4s per token row (H·Dh/4)
var<private> head0: u32; // vec4 index of (tile b, token 0, head h)
var<private> q0: u32; // the workgroup's first query row
// Scores: s{i} = row ty + RS·i, components j = keys tx + 8j of the block.
var<private> s0: vec4f;
var<private> s1: vec4f;
var<private> s2: vec4f;
var<private> s3: vec4f;
// Output accumulators: o{i}{c} = row ty + RS·i, vec4 column tx + 8c.
var<private> o00: vec4f;
var<private> o01: vec4f;
var<private> o02: vec4f;
var<private> o03: vec4f;
var<private> o10: vec4f;
var<private> o11: vec4f;
var<private> o12: vec4f;
var<private> o13: vec4f;
var<private> o20: vec4f;
var<private> o21: vec4f;
var<private> o22: vec4f;
var<private> o23: vec4f;
var<private> o30: vec4f;
var<private> o31: vec4f;
var<private> o32: vec4f;
var<private> o33: vec4f;
// One stage in flight: Q rows ty + RS·u, K and V rows ty + RS·u (u < KR), column tx of the stage.
var<private> pq0: vec4f;
var<private> pq1: vec4f;
var<private> pq2: vec4f;
var<private> pq3: vec4f;
var<private> pk0: vec4f;
var<private> pk1: vec4f;
var<private> pk2: vec4f;
var<private> pk3: vec4f;
var<private> pv0: vec4f;
var<private> pv1: vec4f;
var<private> pv2: vec4f;
var<private> pv3: vec4f;

// Zeros outside T and Dh, so padded rows and columns add nothing to S and P·V.
fn ldq(row: u32, col: u32) -> vec4f {
  if (row < tok && col < D4) { return q[head0 + row * rstride + col] * p.scale; }
  return vec4f(0.0);
}
fn ldk(row: u32, col: u32) -> vec4f {
  if (row < tok && col < D4) { return k[head0 + row * rstride + col]; }
  return vec4f(0.0);
}
fn ldv(row: u32, col: u32) -> vec4f {
  if (row < tok && col < D4) { return v[head0 + row * rstride + col]; }
  return vec4f(0.0);
}

// Stage ch of key block kb: columns 8·ch.. of the workgroup's Q rows and of keys kb..kb+31.
fn issue(kb: u32, ch: u32) {
  let col = ch * DC + tx;
  let qr = q0 + ty;
  pq0 = ldq(qr, col);
  pq1 = ldq(qr + RS, col);
  pq2 = ldq(qr + 2u * RS, col);
  pq3 = ldq(qr + 3u * RS, col);
  let kr = kb + ty;
  pk0 = ldk(kr, col);
  pk1 = ldk(kr + RS, col);
  pv0 = ldv(kr, col);
  pv1 = ldv(kr + RS, col);
  if (KR > 2u) {
    pk2 = ldk(kr + 2u * RS, col);
    pk3 = ldk(kr + 3u * RS, col);
    pv2 = ldv(kr + 2u * RS, col);
    pv3 = ldv(kr + 3u * RS, col);
  }
}

fn store(ch: u32) {
  qk[ty][tx] = pq0;
  qk[ty + RS][tx] = pq1;
  qk[ty + 2u * RS][tx] = pq2;
  qk[ty + 3u * RS][tx] = pq3;
  qk[BQ + ty][tx] = pk0;
  qk[BQ + ty + RS][tx] = pk1;
  let col = ch * DC + tx;
  vs[ty][col] = pv0;
  vs[ty + RS][col] = pv1;
  if (KR > 2u) {
    qk[BQ + ty + 2u * RS][tx] = pk2;
    qk[BQ + ty + 3u * RS][tx] = pk3;
    vs[ty + 2u * RS][col] = pv2;
    vs[ty + 3u * RS][col] = pv3;
  }
}

// One vec4 column c of the stage: 4 rows × 4 keys × 4 components.
fn scoreStep(c: u32) {
  let a0 = qk[ty][c];
  let a1 = qk[ty + RS][c];
  let a2 = qk[ty + 2u * RS][c];
  let a3 = qk[ty + 3u * RS][c];
  let k0 = qk[BQ + tx][c];
  let k1 = qk[BQ + tx + 8u][c];
  let k2 = qk[BQ + tx + 16u][c];
  let k3 = qk[BQ + tx + 24u][c];
  let kx = vec4f(k0.x, k1.x, k2.x, k3.x);
  let ky = vec4f(k0.y, k1.y, k2.y, k3.y);
  let kz = vec4f(k0.z, k1.z, k2.z, k3.z);
  let kw = vec4f(k0.w, k1.w, k2.w, k3.w);
  s0 = fma(a0.wwww, kw, fma(a0.zzzz, kz, fma(a0.yyyy, ky, fma(a0.xxxx, kx, s0))));
  s1 = fma(a1.wwww, kw, fma(a1.zzzz, kz, fma(a1.yyyy, ky, fma(a1.xxxx, kx, s1))));
  s2 = fma(a2.wwww, kw, fma(a2.zzzz, kz, fma(a2.yyyy, ky, fma(a2.xxxx, kx, s2))));
  s3 = fma(a3.wwww, kw, fma(a3.zzzz, kz, fma(a3.yyyy, ky, fma(a3.xxxx, kx, s3))));
}

fn scoreStage() {
  scoreStep(0u);
  scoreStep(1u);
  scoreStep(2u);
  scoreStep(3u);
  scoreStep(4u);
  scoreStep(5u);
  scoreStep(6u);
  scoreStep(7u);
}

// Key j of the block with probabilities a{i} of the thread's rows: O{i} += a{i} · V[j] (vec4 columns past
// Dh are compiled out).
fn pvKey(j: u32, a0: f32, a1: f32, a2: f32, a3: f32) {
  let v0 = vs[j][tx];
  o00 = fma(vec4f(a0), v0, o00);
  o10 = fma(vec4f(a1), v0, o10);
  o20 = fma(vec4f(a2), v0, o20);
  o30 = fma(vec4f(a3), v0, o30);
  if (D4 > 8u) {
    let v1 = vs[j][tx + 8u];
    o01 = fma(vec4f(a0), v1, o01);
    o11 = fma(vec4f(a1), v1, o11);
    o21 = fma(vec4f(a2), v1, o21);
    o31 = fma(vec4f(a3), v1, o31);
  }
  if (D4 > 16u) {
    let v2 = vs[j][tx + 16u];
    o02 = fma(vec4f(a0), v2, o02);
    o12 = fma(vec4f(a1), v2, o12);
    o22 = fma(vec4f(a2), v2, o22);
    o32 = fma(vec4f(a3), v2, o32);
  }
  if (D4 > 24u) {
    let v3 = vs[j][tx + 24u];
    o03 = fma(vec4f(a0), v3, o03);
    o13 = fma(vec4f(a1), v3, o13);
    o23 = fma(vec4f(a2), v3, o23);
    o33 = fma(vec4f(a3), v3, o33);
  }
}

// Keys 4·j4 .. 4·j4 + 3: one vec4 of P per row.
fn pvQuad(j4: u32) {
  let a0 = qk[ty][j4];
  let a1 = qk[ty + RS][j4];
  let a2 = qk[ty + 2u * RS][j4];
  let a3 = qk[ty + 3u * RS][j4];
  pvKey(4u * j4, a0.x, a1.x, a2.x, a3.x);
  pvKey(4u * j4 + 1u, a0.y, a1.y, a2.y, a3.y);
  pvKey(4u * j4 + 2u, a0.z, a1.z, a2.z, a3.z);
  pvKey(4u * j4 + 3u, a0.w, a1.w, a2.w, a3.w);
}

fn pvBlock() {
  pvQuad(0u);
  pvQuad(1u);
  pvQuad(2u);
  pvQuad(3u);
  pvQuad(4u);
  pvQuad(5u);
  pvQuad(6u);
  pvQuad(7u);
}

fn rescale(a0: f32, a1: f32, a2: f32, a3: f32) {
  o00 *= a0;
  o01 *= a0;
  o02 *= a0;
  o03 *= a0;
  o10 *= a1;
  o11 *= a1;
  o12 *= a1;
  o13 *= a1;
  o20 *= a2;
  o21 *= a2;
  o22 *= a2;
  o23 *= a2;
  o30 *= a3;
  o31 *= a3;
  o32 *= a3;
  o33 *= a3;
}

fn hmax(x: vec4f) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

// Key tx + 8j of the block goes to P column (tx + 8j) / 4 = tx / 4 + 2j, component tx % 4.
fn putP(row: u32, e: vec4f) {
  let c = tx / 4u;
  let m = tx % 4u;
  qk[row][c][m] = e.x;
  qk[row][c + 2u][m] = e.y;
  qk[row][c + 4u][m] = e.z;
  qk[row][c + 6u][m] = e.w;
}

fn putRed(row: u32, x: f32) {
  red[row][tx / 4u][tx % 4u] = x;
}

fn writeRow(row: u32, inv: f32, c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f) {
  let t = q0 + row;
  if (t >= tok) { return; }
  let at = head0 + t * rstride + tx;
  if (tx < D4) { out[at] = c0 * inv; }
  if (tx + 8u < D4) { out[at + 8u] = c1 * inv; }
  if (tx + 16u < D4) { out[at + 16u] = c2 * inv; }
  if (tx + 24u < D4) { out[at + 24u] = c3 * inv; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let T = p.tokens;
  tx = li % 8u;
  ty = li / 8u;
  tok = T;
  rstride = p.num_heads * D4;
  head0 = wg.z * T * rstride + wg.y * D4;
  q0 = wg.x * BQ;
  let r0 = ty;
  let r1 = ty + RS;
  let r2 = ty + 2u * RS;
  let r3 = ty + 3u * RS;

  // Running max (real after the first block: every block holds ≥ 1 real key) and this thread's share of
  // the running sum (its own keys only; the 8 shares of a row are added at the end).
  var m0 = NEG;
  var m1 = NEG;
  var m2 = NEG;
  var m3 = NEG;
  var l0 = 0.0;
  var l1 = 0.0;
  var l2 = 0.0;
  var l3 = 0.0;

  if (PREFETCH) { issue(0u, 0u); }
  for (var kb = 0u; kb < T; kb += BK) {
    s0 = vec4f(0.0);
    s1 = vec4f(0.0);
    s2 = vec4f(0.0);
    s3 = vec4f(0.0);
    for (var ch = 0u; ch < NCH; ch++) {
      if (!PREFETCH) { issue(kb, ch); }
      workgroupBarrier(); // the last stage's Q/K (at ch 0: the last block's P and V) are no longer read
      store(ch);
      workgroupBarrier();
      if (PREFETCH) {
        if (ch + 1u < NCH) {
          issue(kb, ch + 1u);
        } else if (kb + BK < T) {
          issue(kb + BK, 0u);
        }
      }
      scoreStage();
    }

    if (kb + BK > T) {
      let ok = vec4<bool>(kb + tx < T, kb + tx + 8u < T, kb + tx + 16u < T, kb + tx + 24u < T);
      s0 = select(vec4f(NEG), s0, ok);
      s1 = select(vec4f(NEG), s1, ok);
      s2 = select(vec4f(NEG), s2, ok);
      s3 = select(vec4f(NEG), s3, ok);
    }
    putRed(r0, hmax(s0));
    putRed(r1, hmax(s1));
    putRed(r2, hmax(s2));
    putRed(r3, hmax(s3));
    workgroupBarrier(); // also: every thread is done reading the Q/K stage that P overwrites
    let mn0 = max(m0, hmax(max(red[r0][0], red[r0][1])));
    let mn1 = max(m1, hmax(max(red[r1][0], red[r1][1])));
    let mn2 = max(m2, hmax(max(red[r2][0], red[r2][1])));
    let mn3 = max(m3, hmax(max(red[r3][0], red[r3][1])));
    let e0 = exp(s0 - mn0);
    let e1 = exp(s1 - mn1);
    let e2 = exp(s2 - mn2);
    let e3 = exp(s3 - mn3);
    let a0 = exp(m0 - mn0);
    let a1 = exp(m1 - mn1);
    let a2 = exp(m2 - mn2);
    let a3 = exp(m3 - mn3);
    l0 = l0 * a0 + ((e0.x + e0.y) + (e0.z + e0.w));
    l1 = l1 * a1 + ((e1.x + e1.y) + (e1.z + e1.w));
    l2 = l2 * a2 + ((e2.x + e2.y) + (e2.z + e2.w));
    l3 = l3 * a3 + ((e3.x + e3.y) + (e3.z + e3.w));
    m0 = mn0;
    m1 = mn1;
    m2 = mn2;
    m3 = mn3;
    rescale(a0, a1, a2, a3);
    putP(r0, e0);
    putP(r1, e1);
    putP(r2, e2);
    putP(r3, e3);
    workgroupBarrier();
    pvBlock();
  }

  // red was last read before the final P barrier, so it can take the row sums.
  putRed(r0, l0);
  putRed(r1, l1);
  putRed(r2, l2);
  putRed(r3, l3);
  workgroupBarrier();
  let one = vec4f(1.0);
  writeRow(r0, 1.0 / dot(red[r0][0] + red[r0][1], one), o00, o01, o02, o03);
  writeRow(r1, 1.0 / dot(red[r1][0] + red[r1][1], one), o10, o11, o12, o13);
  writeRow(r2, 1.0 / dot(red[r2][0] + red[r2][1], one), o20, o21, o22, o23);
  writeRow(r3, 1.0 / dot(red[r3][0] + red[r3][1], one), o30, o31, o32, o33);
}
