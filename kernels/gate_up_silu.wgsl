// Not used by the model any more (kernels/matvec_i8.wgsl replaced it); kept as the "before" baseline that
// scripts/bench_matvec.ts measures new matvec tilings against.
// InternLM2 MLP front half for decode (few tokens) with the ffn RMSNorm fused, in one dispatch:
//   out[t, n] = silu(a) · b,  a = inv_t · s1[n] · Σ_k (x[t, k]·g[k])·W1[n, k],  b = the same with W3, s3,
//   inv_t = rsqrt(mean_k x[t, k]² + eps)
// = silu_mul(linear(rms_norm(x), w1), linear(rms_norm(x), w3)) up to f32 rounding: the norm's per-token
// factor commutes with the dot product, so it is applied after the reduction and no normed copy of x exists.
// Scheme of linear_matvec.wgsl (32 lanes per output row, lane l takes words l, l+32, …: each weight load of
// a warp reads 128 contiguous bytes, its x reads are one contiguous 512-byte run), but the lanes of row n
// stream W1[n] AND W3[n]: one x (and g) load feeds two weight words, halving x cache traffic per weight
// byte (at T tokens a weight byte otherwise pulls 4T bytes of x through L1), and 8 weight loads per lane are
// in flight per iteration instead of 4. Σ x[t]² is summed by warp t (t < TT) after its rows: x is small and
// cache-resident, so the norm costs no pass over memory and no dispatch.
//
// Bindings: 1 x   [T, K] f32 viewed as vec4 (K % 4 == 0)
//           2 g   [K] f32 viewed as vec4 (ffn_norm weight)
//           3 w1  [I, K] i8x4 (K/4 words per row)
//           4 s1  [I] f32 (SCB/127 of w1)
//           5 w3  [I, K] i8x4
//           6 s3  [I] f32
//           7 out [T, I] f32 (not x)
// Params:   n = I, k4 = K/4, eps (f32), groups_per_row
// Overrides: TT = T (1..8; a constant so the accumulators stay in registers).
// Grid:     ceil(I/8) workgroups of 256 (8 rows each), folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none (unpack4xI8 is core WGSL; no subgroups).
struct Params { n: u32, k4: u32, eps: f32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w1: array<u32>;
@group(0) @binding(4) var<storage, read> s1: array<f32>;
@group(0) @binding(5) var<storage, read> w3: array<u32>;
@group(0) @binding(6) var<storage, read> s3: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

override TT: u32 = 1u;
const LANES = 32u; // lanes per row
const ROWS = 8u; // output rows per workgroup (ROWS * LANES = 256)

// red[s * 256 + local index], s < TT + 1: per-thread partials of one reduction round. Two rounds (W1 with
// Σx², then W3) keep it at 9 KiB, under WebGPU's default 16 KiB of workgroup memory.
var<workgroup> red: array<f32, 2304>;

// Per-token accumulators as named scalars guarded by the constant TT (an array indexed by a loop variable
// may go to local memory); .x sums the W1 row, .y the W3 row.
struct Acc { t0: vec2<f32>, t1: vec2<f32>, t2: vec2<f32>, t3: vec2<f32>,
             t4: vec2<f32>, t5: vec2<f32>, t6: vec2<f32>, t7: vec2<f32> }

// (x[t, 4q..4q+3] · ga, x[t, 4q..4q+3] · gb): one x load for both rows.
fn tok(t: u32, q: u32, ga: vec4<f32>, gb: vec4<f32>) -> vec2<f32> {
  let v = x[t * p.k4 + q];
  return vec2<f32>(dot(v, ga), dot(v, gb));
}

// Word q of both rows. g·W is formed once per word and shared by all tokens; int8 → f32 is exact and
// the row scales are applied after the reduction.
fn accumulate(a: ptr<function, Acc>, q: u32, wa: u32, wb: u32) {
  let gq = g[q];
  let ga = gq * vec4<f32>(unpack4xI8(wa));
  let gb = gq * vec4<f32>(unpack4xI8(wb));
  (*a).t0 += tok(0u, q, ga, gb);
  if (TT > 1u) { (*a).t1 += tok(1u, q, ga, gb); }
  if (TT > 2u) { (*a).t2 += tok(2u, q, ga, gb); }
  if (TT > 3u) { (*a).t3 += tok(3u, q, ga, gb); }
  if (TT > 4u) { (*a).t4 += tok(4u, q, ga, gb); }
  if (TT > 5u) { (*a).t5 += tok(5u, q, ga, gb); }
  if (TT > 6u) { (*a).t6 += tok(6u, q, ga, gb); }
  if (TT > 7u) { (*a).t7 += tok(7u, q, ga, gb); }
}

// Component c (0: W1, 1: W3) of every token's accumulator into red[t * 256 + li].
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let slot = li / LANES;
  let n = (wg.y * p.groups_per_row + wg.x) * ROWS + slot;
  // Rows past I (last workgroup, folded-grid overhang) re-read row I−1 and write nothing: no branch in
  // the loop.
  let row = min(n, p.n - 1u) * p.k4;
  var acc = Acc();
  var q = lane;
  for (; q + 3u * LANES < p.k4; q += 4u * LANES) {
    let a0 = w1[row + q];
    let a1 = w1[row + q + LANES];
    let a2 = w1[row + q + 2u * LANES];
    let a3 = w1[row + q + 3u * LANES];
    let b0 = w3[row + q];
    let b1 = w3[row + q + LANES];
    let b2 = w3[row + q + 2u * LANES];
    let b3 = w3[row + q + 3u * LANES];
    accumulate(&acc, q, a0, b0);
    accumulate(&acc, q + LANES, a1, b1);
    accumulate(&acc, q + 2u * LANES, a2, b2);
    accumulate(&acc, q + 3u * LANES, a3, b3);
  }
  for (; q < p.k4; q += LANES) {
    accumulate(&acc, q, w1[row + q], w3[row + q]);
  }
  // Σ x[slot, :]² by warp `slot` (a whole warp takes the branch or none of it).
  var ss = 0.0;
  if (slot < TT) {
    for (var i = lane; i < p.k4; i += LANES) {
      let v = x[slot * p.k4 + i];
      ss += dot(v, v);
    }
  }

  // Round 1: W1 sums and Σx². Lane t of each row keeps token t.
  stash(acc, 0u, li);
  red[TT * 256u + li] = ss;
  reduce_lanes(lane, li, TT + 1u);
  var a = 0.0;
  var inv = 0.0;
  if (lane < TT) {
    a = red[lane * 256u + slot * LANES];
    inv = inverseSqrt(red[TT * 256u + lane * LANES] / f32(4u * p.k4) + p.eps);
  }
  workgroupBarrier();
  // Round 2: W3 sums.
  stash(acc, 1u, li);
  reduce_lanes(lane, li, TT);
  if (n < p.n && lane < TT) {
    let gate = inv * s1[n] * a;
    let up = inv * s3[n] * red[lane * 256u + slot * LANES];
    // exp(−gate) overflowing to +inf for gate ≪ 0 gives gate / inf = −0, the right limit.
    out[lane * p.n + n] = gate / (1.0 + exp(-gate)) * up;
  }
}
