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

// #include flash_tile

var<private> tok: u32;
var<private> rstride: u32; // vec4s per token row (H·Dh/4)
var<private> head0: u32; // vec4 index of (tile b, token 0, head h)
var<private> q0: u32; // the workgroup's first query row

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

  startRows();

  if (PREFETCH) { issue(0u, 0u); }
  for (var kb = 0u; kb < T; kb += BK) {
    s0 = vec4f(0.0);
    s1 = vec4f(0.0);
    s2 = vec4f(0.0);
    s3 = vec4f(0.0);
    for (var ch = 0u; ch < NCH; ch++) {
      if (!PREFETCH) { issue(kb, ch); }
      workgroupBarrier(); // the last stage's Q/K (at ch 0: the last block's P and V) are no longer read
      storeStage(ch);
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
    acceptBlock(e0, e1, e2, e3, mn0, mn1, mn2, mn3);
  }
  putRowSums();
  let one = vec4f(1.0);
  writeRow(r0, 1.0 / dot(red[r0][0] + red[r0][1], one), o00, o01, o02, o03);
  writeRow(r1, 1.0 / dot(red[r1][0] + red[r1][1], one), o10, o11, o12, o13);
  writeRow(r2, 1.0 / dot(red[r2][0] + red[r2][1], one), o20, o21, o22, o23);
  writeRow(r3, 1.0 / dot(red[r3][0] + red[r3][1], one), o30, o31, o32, o33);
}
