// Decode-path int8 linear (or the gate/up pair of the MLP) whose input RMSNorm was started by the kernel
// that produced the input (linear_matvec with NORM_NEXT): it wrote xg[t, k] = h[t, k]·g[k] and partial
// sums of h[t, ·]², so this kernel's loop is the plain matrix-vector loop, with no g load and no multiply
// per weight word (the norm-fused matvec_i8 tilings stream the same bytes at ~0.71 of copy, the plain
// one-row kernel at ~0.85; H100, bench/results/2026-11-26-h100-matvec-interleaved.log):
//   out[t, n] = inv_t · s1[n] · Σ_k xg[t, k]·W1[n, k] + bias[n],   inv_t = rsqrt(Σ_w part[t, w] / K + eps)
//   GATE:  out[t, n] = silu(a)·b, a as above, b the same with W3, s3 (no bias).
// Scheme of linear_matvec.wgsl: one weight row per warp, lane l takes words l, l+32, … (each load
// instruction of a warp reads 128 contiguous bytes, its x reads one contiguous 512-byte run), four words in
// flight per lane. GATE: warps 0–3 stream rows of W1, warps 4–7 the same rows of W3. inv_t is summed by
// warp t after its row, off the loop's critical path (the partials are few and cache-resident).
//
// Bindings: 1 xn   [T, K + P] f32 viewed as vec4: row t = xg[t, 0..K) then the producer's P partial sums
//                  (K % 4 == 0, P % 4 == 0; the first `parts` are summed)
//           2 w1   [N, K] i8x4 (K/4 words per row)
//           3 s1   [N] f32 (SCB/127)
//           4 w3   [N, K] i8x4 (GATE; otherwise any read-only buffer)
//           5 s3   [N] f32 (GATE; otherwise any read-only buffer)
//           6 bias [N] f32 (read only when has_bias)
//           7 out  [T, N] f32 (not xn)
// Params:   n = N, k4 = K/4, xs4 = (K + P)/4, parts, eps (f32), has_bias, groups_per_row
// Overrides: TT = T (1..8), GATE.
// Grid:     ceil(N / 8) workgroups of 256 (GATE: ceil(N / 4)), folded into 2-D as (wg.y·groups_per_row + wg.x).
// Features: none (int8 widened by kernels/int8.wgsl; no subgroups).
struct Params { n: u32, k4: u32, xs4: u32, parts: u32, eps: f32, has_bias: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xn: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w1: array<u32>;
@group(0) @binding(3) var<storage, read> s1: array<f32>;
@group(0) @binding(4) var<storage, read> w3: array<u32>;
@group(0) @binding(5) var<storage, read> s3: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

// #include int8

override TT: u32 = 1u;
override GATE: bool = false;
const LANES = 32u; // lanes per row
const WARPS = 8u; // rows streamed per workgroup

// red[s * 256 + local index], s ≤ TT: per-thread partials of every token, then Σ h² in slot TT.
var<workgroup> red: array<f32, 2304>;

struct Acc { t0: f32, t1: f32, t2: f32, t3: f32, t4: f32, t5: f32, t6: f32, t7: f32 }

// Weight word `word` (index q of its row) against every token's xg.
fn accumulate(a: ptr<function, Acc>, q: u32, word: u32) {
  let w = i8x4(word);
  (*a).t0 += dot(xn[q], w);
  if (TT > 1u) { (*a).t1 += dot(xn[p.xs4 + q], w); }
  if (TT > 2u) { (*a).t2 += dot(xn[2u * p.xs4 + q], w); }
  if (TT > 3u) { (*a).t3 += dot(xn[3u * p.xs4 + q], w); }
  if (TT > 4u) { (*a).t4 += dot(xn[4u * p.xs4 + q], w); }
  if (TT > 5u) { (*a).t5 += dot(xn[5u * p.xs4 + q], w); }
  if (TT > 6u) { (*a).t6 += dot(xn[6u * p.xs4 + q], w); }
  if (TT > 7u) { (*a).t7 += dot(xn[7u * p.xs4 + q], w); }
}

// Word i of W3 (the warp streams W3) or W1: the branch is uniform over the warp.
fn word(from3: bool, i: u32) -> u32 {
  if (from3) { return w3[i]; }
  return w1[i];
}

// Σ_k xg[t, k]·W[row, k] of every token, this lane's share.
fn row_sums(from3: bool, row: u32, lane: u32) -> Acc {
  var acc = Acc();
  var q = lane;
  for (; q + 3u * LANES < p.k4; q += 4u * LANES) {
    let a0 = word(from3, row + q);
    let a1 = word(from3, row + q + LANES);
    let a2 = word(from3, row + q + 2u * LANES);
    let a3 = word(from3, row + q + 3u * LANES);
    accumulate(&acc, q, a0);
    accumulate(&acc, q + LANES, a1);
    accumulate(&acc, q + 2u * LANES, a2);
    accumulate(&acc, q + 3u * LANES, a3);
  }
  for (; q < p.k4; q += LANES) {
    accumulate(&acc, q, word(from3, row + q));
  }
  return acc;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let slot = li / LANES;
  let rows = select(WARPS, WARPS / 2u, GATE); // output rows per workgroup
  let first = (wg.y * p.groups_per_row + wg.x) * rows;
  let n = first + slot % rows;
  // Rows past N (last workgroup, folded-grid overhang) re-read row N−1 and write nothing.
  let row = min(n, p.n - 1u) * p.k4;
  let acc = row_sums(GATE && slot >= rows, row, lane);
  // Σ h[slot, :]² from the producer's partials, by warp `slot` (a whole warp takes the branch or none).
  var ss = 0.0;
  if (slot < TT) {
    let base = slot * p.xs4 + p.k4;
    for (var i = lane; 4u * i < p.parts; i += LANES) {
      let idx = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
      ss += dot(select(vec4<f32>(), xn[base + i], idx < vec4<u32>(p.parts)), vec4<f32>(1.0));
    }
  }
  red[li] = acc.t0;
  if (TT > 1u) { red[256u + li] = acc.t1; }
  if (TT > 2u) { red[512u + li] = acc.t2; }
  if (TT > 3u) { red[768u + li] = acc.t3; }
  if (TT > 4u) { red[1024u + li] = acc.t4; }
  if (TT > 5u) { red[1280u + li] = acc.t5; }
  if (TT > 6u) { red[1536u + li] = acc.t6; }
  if (TT > 7u) { red[1792u + li] = acc.t7; }
  red[TT * 256u + li] = ss;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t <= TT; t++) {
        red[t * 256u + li] += red[t * 256u + li + s];
      }
    }
    workgroupBarrier();
  }
  // Lane t of each output row writes token t.
  if (slot < rows && n < p.n && lane < TT) {
    let inv = inverseSqrt(red[TT * 256u + lane * LANES] / f32(4u * p.k4) + p.eps);
    let a = inv * s1[n] * red[lane * 256u + slot * LANES];
    if (GATE) {
      let up = inv * s3[n] * red[lane * 256u + (slot + rows) * LANES];
      // exp(−a) overflowing to +inf for a ≪ 0 gives a / inf = −0, the right limit.
      out[lane * p.n + n] = a / (1.0 + exp(-a)) * up;
    } else {
      var o = a;
      if (p.has_bias != 0u) { o += bias[n]; }
      out[lane * p.n + n] = o;
    }
  }
}
