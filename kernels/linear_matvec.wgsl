// Matrix-vector linear layer for decode (few tokens): out[t, n] = scale[n] · Σ_k x[t, k]·W[n, k] + bias[n].
// Bandwidth bound. 32 lanes (LANES) share a weight row, 8 rows per workgroup, then a shared-memory tree reduction
// (no subgroups on the production Vulkan path). Lane l takes words l, l+32, l+64, … of its row, so each
// load instruction of a warp reads 128 contiguous weight bytes AND its x reads (x[t, 4q..4q+3] for word q)
// are one contiguous 512-byte run. Giving each lane a 16-byte weight chunk instead (vec4<u32>) makes its x
// reads a 64-byte stride across lanes, 4× the L1 traffic (H200, LM head 92553×6144, T=1: 1.2 TB/s that
// way, 1.75–2.5 TB/s this way). Four words per lane are loaded before any math so several loads are in
// flight (eight, through a private array, was slower: the array went to local memory).
// ROWS2 (int8, one token): each lane takes the same words of two rows, n and n + 4, so one x load serves
// both — the decode step's wo and w2 on an H200 (64 lanes a row): 7.73 → 7.58 ms a step (PERF.md v71).
// BIASED (ROWS2): the words widen to (b + 128)·2⁻²⁴ (i8x4_biased, kernels/int8.wgsl) and each word's two
// chains start from −I8_BIAS·Σx of the word: one addition a row and word instead of four subtractions.
//
// Bindings: 1 x     [T, K] f32 viewed as vec4 (K % 4 == 0)
//           2 w     int8: [N, K] i8x4 (kw = K/4 words per row); f32: [N, K] f32 bits (kw = K)
//           3 scale [N] f32 (SCB/127; read only when has_scale)
//           4 bias  [N] f32 (read only when has_bias)
//           5 out   [T, N] f32
// Params:   n = N, k4 = K/4, kw, has_scale, has_bias, groups_per_row, accumulate (1: out += result)
// Overrides: INT8 (weight encoding), TT = T (1..8; a constant so the accumulators stay in registers),
//            LANES = lanes a row, 8, 32 or 64 (≥ TT: lane t writes token t; src/ops/linear.ts chooses),
//            ROWS2 (INT8, TT = 1: two rows a lane; lane r writes the slot's row r), BIASED (ROWS2 only),
//            DOT_ADD (benchmarks only: a dot product and an add per word, the form the chain replaced).
// Grid:     ceil(N/8) workgroups of 8·LANES threads (ROWS2: 4·LANES), folded into 2-D as
//           (wg.y * groups_per_row + wg.x).
// Features: none (int8 widened by kernels/int8.wgsl, no unpack4xI8).
struct Params { n: u32, k4: u32, kw: u32, has_scale: u32, has_bias: u32, groups_per_row: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// #include int8

override INT8: bool = true;
override TT: u32 = 1u;
override DOT_ADD: bool = false;
override LANES: u32 = 32u; // lanes per row
override ROWS2: bool = false;
override BIASED: bool = false;
const ROWS = 8u; // rows per workgroup
override WG: u32 = select(ROWS, ROWS / 2u, ROWS2) * LANES;
// Sums a thread leaves for the reduction: one a token, or (ROWS2) one a row.
override SUMS: u32 = select(TT, 2u, ROWS2);

// red[t * WG + local index]: per-thread partial sums of every token (ROWS2: of each of its two rows).
var<workgroup> red: array<f32, 2048>;

// acc + x[t, ·] · W[n, ·] restricted to weight word q. INT8 is a constant, so one branch survives; int8 →
// f32 (i8x4_halves) is exact and the row scale is applied after the reduction. The four products are chained
// into the accumulator (4 instructions; a dot product and an add take 5: DOT_ADD, benchmarks only).
fn word_fma(t: u32, q: u32, word: u32, acc: f32) -> f32 {
  if (INT8) {
    let v = x[t * p.k4 + q];
    let w = i8x4_halves(word);
    if (DOT_ADD) { return acc + dot(v, w); }
    return fma(v.w, w.w, fma(v.z, w.z, fma(v.y, w.y, fma(v.x, w.x, acc))));
  }
  return fma(x[t * p.k4 + q / 4u][q % 4u], bitcast<f32>(word), acc);
}

// Token accumulators are named scalars guarded by the constant TT (not an array indexed by a loop
// variable, which the driver may put in local memory).
struct Acc { t0: f32, t1: f32, t2: f32, t3: f32, t4: f32, t5: f32, t6: f32, t7: f32 }

fn accumulate(a: ptr<function, Acc>, q: u32, word: u32) {
  (*a).t0 = word_fma(0u, q, word, (*a).t0);
  if (TT > 1u) { (*a).t1 = word_fma(1u, q, word, (*a).t1); }
  if (TT > 2u) { (*a).t2 = word_fma(2u, q, word, (*a).t2); }
  if (TT > 3u) { (*a).t3 = word_fma(3u, q, word, (*a).t3); }
  if (TT > 4u) { (*a).t4 = word_fma(4u, q, word, (*a).t4); }
  if (TT > 5u) { (*a).t5 = word_fma(5u, q, word, (*a).t5); }
  if (TT > 6u) { (*a).t6 = word_fma(6u, q, word, (*a).t6); }
  if (TT > 7u) { (*a).t7 = word_fma(7u, q, word, (*a).t7); }
}

fn pair_word_f32(w: u32) -> vec4<f32> {
  if (BIASED) { return i8x4_biased(w); }
  return i8x4_halves(w);
}

// ROWS2: the sums of rows `first` (t0) and first + ROWS/2 (t1) at token 0, one x load for both words
// (BIASED: 2⁻²⁴ times the sums, over (b + 128)·2⁻²⁴ less I8_BIAS·Σx).
fn word_pair(a: ptr<function, Acc>, q: u32, u: u32, v: u32) {
  let xv = x[q];
  let wu = pair_word_f32(u);
  let wv = pair_word_f32(v);
  var s0 = (*a).t0;
  var s1 = (*a).t1;
  if (BIASED) {
    let xb = i8_bias_of(xv);
    s0 += xb;
    s1 += xb;
  }
  (*a).t0 = fma(xv.w, wu.w, fma(xv.z, wu.z, fma(xv.y, wu.y, fma(xv.x, wu.x, s0))));
  (*a).t1 = fma(xv.w, wv.w, fma(xv.z, wv.z, fma(xv.y, wv.y, fma(xv.x, wv.x, s1))));
}

fn two_rows(a: ptr<function, Acc>, first: u32, lane: u32) {
  // A second row past N reads the first again (in bounds); its sum is not written.
  let n1 = first + ROWS / 2u;
  let r0 = first * p.kw;
  let r1 = select(first, n1, n1 < p.n) * p.kw;
  var q = lane;
  for (; q + 3u * LANES < p.kw; q += 4u * LANES) {
    let u0 = w[r0 + q];
    let u1 = w[r0 + q + LANES];
    let u2 = w[r0 + q + 2u * LANES];
    let u3 = w[r0 + q + 3u * LANES];
    let v0 = w[r1 + q];
    let v1 = w[r1 + q + LANES];
    let v2 = w[r1 + q + 2u * LANES];
    let v3 = w[r1 + q + 3u * LANES];
    word_pair(a, q, u0, v0);
    word_pair(a, q + LANES, u1, v1);
    word_pair(a, q + 2u * LANES, u2, v2);
    word_pair(a, q + 3u * LANES, u3, v3);
  }
  for (; q < p.kw; q += LANES) { word_pair(a, q, w[r0 + q], w[r1 + q]); }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let slot = li / LANES;
  let first = (wg.y * p.groups_per_row + wg.x) * ROWS + slot;
  // Lane t of a row writes token t; with ROWS2 (one token), lane r writes row first + r·ROWS/2.
  let n = select(first, first + lane * (ROWS / 2u), ROWS2 && lane < 2u);
  let tok = select(lane, 0u, ROWS2);
  // The epilogue's operands are requested before the weight loop, so the workgroup's last step does not
  // wait on another memory round trip.
  let writes = n < p.n && lane < SUMS;
  var prev = 0.0;
  var sc = 1.0;
  var bi = 0.0;
  if (writes) {
    if (p.accumulate != 0u) { prev = out[tok * p.n + n]; }
    if (p.has_scale != 0u) { sc = scale[n]; }
    if (p.has_bias != 0u) { bi = bias[n]; }
  }
  var acc = Acc();
  if (ROWS2) {
    if (first < p.n) { two_rows(&acc, first, lane); }
    if (BIASED) {
      acc.t0 *= I8_UNSCALE;
      acc.t1 *= I8_UNSCALE;
    }
  } else if (first < p.n) {
    let row = first * p.kw;
    var q = lane;
    for (; q + 3u * LANES < p.kw; q += 4u * LANES) {
      let w0 = w[row + q];
      let w1 = w[row + q + LANES];
      let w2 = w[row + q + 2u * LANES];
      let w3 = w[row + q + 3u * LANES];
      accumulate(&acc, q, w0);
      accumulate(&acc, q + LANES, w1);
      accumulate(&acc, q + 2u * LANES, w2);
      accumulate(&acc, q + 3u * LANES, w3);
    }
    for (; q < p.kw; q += LANES) {
      accumulate(&acc, q, w[row + q]);
    }
  }
  red[li] = acc.t0;
  if (SUMS > 1u) { red[1u * WG + li] = acc.t1; }
  if (SUMS > 2u) { red[2u * WG + li] = acc.t2; }
  if (SUMS > 3u) { red[3u * WG + li] = acc.t3; }
  if (SUMS > 4u) { red[4u * WG + li] = acc.t4; }
  if (SUMS > 5u) { red[5u * WG + li] = acc.t5; }
  if (SUMS > 6u) { red[6u * WG + li] = acc.t6; }
  if (SUMS > 7u) { red[7u * WG + li] = acc.t7; }
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t < SUMS; t++) {
        red[t * WG + li] += red[t * WG + li + s];
      }
    }
    workgroupBarrier();
  }
  // Sum `lane` of the slot: token t (lane t), or (ROWS2) row r (lane r).
  if (writes) {
    out[tok * p.n + n] = red[lane * WG + slot * LANES] * sc + bi + prev;
  }
}
