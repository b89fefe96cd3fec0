// Decode-path RMSNorm fused into the following int8 linear layer (few tokens):
//   out[t, n] = inv_t · scale[n] · Σ_k (x[t, k]·g[k])·W[n, k] + bias[n],  inv_t = rsqrt(mean_k x[t, k]² + eps)
// = linear(rms_norm(x), w) up to f32 rounding: the norm's per-token factor commutes with the dot product,
// so it is applied after the reduction and no normed copy of x exists (no norm dispatch, no round trip).
// Scheme of linear_matvec.wgsl (32 lanes per row, lane l takes words l, l+32, …: each weight load of a
// warp reads 128 contiguous bytes and its x reads are one contiguous 512-byte run), with RPW rows per warp
// (rows slot and slot+8 of the workgroup): one x (and g) load then feeds RPW weight words, dividing the x
// cache traffic per weight byte by RPW (at T tokens a weight byte otherwise pulls 4T bytes of x through L1),
// and 4·RPW weight loads per lane are in flight per iteration. Σ x[t]² is summed by warp t (t < TT) after
// its rows: x is small and cache-resident.
//
// Bindings: 1 x     [T, K] f32 viewed as vec4 (K % 4 == 0)
//           2 g     [K] f32 viewed as vec4 (the RMSNorm weight)
//           3 w     [N, K] i8x4 (K/4 words per row)
//           4 scale [N] f32 (SCB/127)
//           5 bias  [N] f32 (read only when has_bias)
//           6 out   [T, N] f32 (not x)
// Params:   n = N, k4 = K/4, eps (f32), has_bias, groups_per_row
// Overrides: TT = T (1..8; a constant so the accumulators stay in registers), RPW = rows per warp (1 or 2).
// Grid:     ceil(N / (8·RPW)) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none (int8 widened by kernels/int8.wgsl, no unpack4xI8; no subgroups).
struct Params { n: u32, k4: u32, eps: f32, has_bias: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// #include int8

override TT: u32 = 1u;
override RPW: u32 = 2u;
const LANES = 32u; // lanes per row
const WARPS = 8u; // row slots per workgroup (WARPS * LANES = 256)

// red[s * 256 + local index], s < TT + 1: per-thread partials of one reduction round. One round per row of
// a warp (the first also carries Σx²) keeps it at 9 KiB, under WebGPU's default 16 KiB of workgroup memory.
var<workgroup> red: array<f32, 2304>;

// Per-token accumulators as named scalars guarded by the constant TT (an array indexed by a loop variable
// may go to local memory); .x sums the warp's first row, .y its second (RPW = 2).
struct Acc { t0: vec2<f32>, t1: vec2<f32>, t2: vec2<f32>, t3: vec2<f32>,
             t4: vec2<f32>, t5: vec2<f32>, t6: vec2<f32>, t7: vec2<f32> }

// (x[t, 4q..4q+3] · ga, x[t, 4q..4q+3] · gb): one x load for both rows.
fn tok(t: u32, q: u32, ga: vec4<f32>, gb: vec4<f32>) -> vec2<f32> {
  let v = x[t * p.k4 + q];
  if (RPW > 1u) { return vec2<f32>(dot(v, ga), dot(v, gb)); }
  return vec2<f32>(dot(v, ga), 0.0);
}

// Word q of the warp's rows. g·W is formed once per word and shared by all tokens; int8 → f32 is exact
// and the row scale is applied after the reduction.
fn accumulate(a: ptr<function, Acc>, q: u32, wa: u32, wb: u32) {
  let gq = g[q];
  let ga = gq * i8x4(wa);
  var gb = vec4<f32>();
  if (RPW > 1u) { gb = gq * i8x4(wb); }
  (*a).t0 += tok(0u, q, ga, gb);
  if (TT > 1u) { (*a).t1 += tok(1u, q, ga, gb); }
  if (TT > 2u) { (*a).t2 += tok(2u, q, ga, gb); }
  if (TT > 3u) { (*a).t3 += tok(3u, q, ga, gb); }
  if (TT > 4u) { (*a).t4 += tok(4u, q, ga, gb); }
  if (TT > 5u) { (*a).t5 += tok(5u, q, ga, gb); }
  if (TT > 6u) { (*a).t6 += tok(6u, q, ga, gb); }
  if (TT > 7u) { (*a).t7 += tok(7u, q, ga, gb); }
}

// Component c (the warp's row c) of every token's accumulator into red[t * 256 + li].
fn stash(a: Acc, c: u32, li: u32) {
  red[li] = a.t0[c];
  if (TT > 1u) { red[256u + li] = a.t1[c]; }
  if (TT > 2u) { red[512u + li] = a.t2[c]; }
  if (TT > 3u) { red[768u + li] = a.t3[c]; }
  if (TT > 4u) { red[1024u + li] = a.t4[c]; }
  if (TT > 5u) { red[1280u + li] = a.t5[c]; }
  if (TT > 6u) { red[1536u + li] = a.t6[c]; }
  if (TT > 7u) { red[1792u + li] = a.t7[c]; }
}

// Tree sum over the 32 lanes of each row for slots 0..count-1; the total lands at lane 0.
fn reduce_lanes(lane: u32, li: u32, count: u32) {
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t < count; t++) {
        red[t * 256u + li] += red[t * 256u + li + s];
      }
    }
    workgroupBarrier();
  }
}

// Lane t of row n (t < TT) writes token t.
fn finish(n: u32, lane: u32, v: f32, inv: f32) {
  if (n < p.n && lane < TT) {
    var o = inv * scale[n] * v;
    if (p.has_bias != 0u) { o += bias[n]; }
    out[lane * p.n + n] = o;
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let slot = li / LANES;
  let na = (wg.y * p.groups_per_row + wg.x) * (WARPS * RPW) + slot;
  let nb = na + WARPS;
  // Rows past N (last workgroup, folded-grid overhang) re-read row N−1 and write nothing: no branch in
  // the loop.
  let ra = min(na, p.n - 1u) * p.k4;
  let rb = min(nb, p.n - 1u) * p.k4;
  var acc = Acc();
  var q = lane;
  for (; q + 3u * LANES < p.k4; q += 4u * LANES) {
    let a0 = w[ra + q];
    let a1 = w[ra + q + LANES];
    let a2 = w[ra + q + 2u * LANES];
    let a3 = w[ra + q + 3u * LANES];
    var b0 = 0u;
    var b1 = 0u;
    var b2 = 0u;
    var b3 = 0u;
    if (RPW > 1u) {
      b0 = w[rb + q];
      b1 = w[rb + q + LANES];
      b2 = w[rb + q + 2u * LANES];
      b3 = w[rb + q + 3u * LANES];
    }
    accumulate(&acc, q, a0, b0);
    accumulate(&acc, q + LANES, a1, b1);
    accumulate(&acc, q + 2u * LANES, a2, b2);
    accumulate(&acc, q + 3u * LANES, a3, b3);
  }
  for (; q < p.k4; q += LANES) {
    var b = 0u;
    if (RPW > 1u) { b = w[rb + q]; }
    accumulate(&acc, q, w[ra + q], b);
  }
  // Σ x[slot, :]² by warp `slot` (a whole warp takes the branch or none of it).
  var ss = 0.0;
  if (slot < TT) {
    for (var i = lane; i < p.k4; i += LANES) {
      let v = x[slot * p.k4 + i];
      ss += dot(v, v);
    }
  }

  // Round 1: first rows and Σx². Lane t of each row keeps token t.
  stash(acc, 0u, li);
  red[TT * 256u + li] = ss;
  reduce_lanes(lane, li, TT + 1u);
  var va = 0.0;
  var inv = 0.0;
  if (lane < TT) {
    va = red[lane * 256u + slot * LANES];
    inv = inverseSqrt(red[TT * 256u + lane * LANES] / f32(4u * p.k4) + p.eps);
  }
  finish(na, lane, va, inv);
  if (RPW > 1u) {
    // Round 2: second rows.
    workgroupBarrier();
    stash(acc, 1u, li);
    reduce_lanes(lane, li, TT);
    var vb = 0.0;
    if (lane < TT) { vb = red[lane * 256u + slot * LANES]; }
    finish(nb, lane, vb, inv);
  }
}
