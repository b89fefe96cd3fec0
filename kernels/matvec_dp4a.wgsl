// The int8 linear for a few tokens (T ≤ 8) in bitsandbytes' LLM.int8 numerics (INT8_MATMUL=llm-int8; the
// activation side from kernels/llm_int8_rows_scan.wgsl + llm_int8_rows_pack.wgsl), through dot4I8Packed —
// four int8 products summed into an i32 by one instruction, so the weights are never widened to f32 and x
// moves as 1 byte an element:
//   out[t, n] (+)= s[n] · (xs[t] · Σ_q dot4I8Packed(xq[t, q], W[n, q]) + Σ_{c outlier} xo[t, c] · W[n, c])
// (the int32 sum is exact: |Σ| ≤ 127² · K < 2³¹ for K < 133 000; the outlier columns, zero in xq, come
// back in f32 from the values as multiplied, spread over the lanes as the words are, then reduced beside the
// integer sums). Rows n1 … n−1 come from a second matrix (w3, s3) — gate and
// up in one dispatch; a workgroup's rows never straddle n1 (src/ops/matvec_dp4a.ts checks).
// Threads: LANES lanes share a row along K (lane l takes words l, l+LANES, …; U per row in flight), each
// thread R rows (first + grp + j·G, G = 256/LANES row groups).
//
// Bindings: 1 xq [T, K/4] u32, 2 xs [T] f32, 3 w [n1, K/4] u32 (i8x4), 4 s [n1] f32 (SCB/127),
//           5 out [T, N] f32, 6 outliers [1 + K] u32 (count, then columns), 7 xo [T, K] f32,
//           8 w3 [N − n1, K/4] u32, 9 s3 [N − n1] f32 (w and s again when n1 = N).
// Params:   n = N, k4 = K/4, groups_per_row, accumulate, n1.
// Overrides: TT = T (1..8), R ∈ {1, 2, 4}, LANES ∈ {16, 32, 64}, U ∈ {1, 2, 4}.
// Grid:     ceil(N / (R·G)) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: packed_4x8_integer_dot_product (core WGSL).
struct Params { n: u32, k4: u32, groups_per_row: u32, accumulate: u32, n1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read> s: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read> outliers: array<u32>;
@group(0) @binding(7) var<storage, read> xo: array<f32>;
@group(0) @binding(8) var<storage, read> w3: array<u32>;
@group(0) @binding(9) var<storage, read> s3: array<f32>;

override TT: u32 = 1u;
override R: u32 = 4u;
override LANES: u32 = 32u;
override U: u32 = 4u;
const WG = 256u;

// red[(tr·4 + j)·256 + li]: two tokens a round, four row slots.
var<workgroup> red: array<i32, 2048>; // integer all the way: the sum stays exact
var<workgroup> redf: array<f32, 2048>; // the outlier columns' f32 sums, same layout

// Per-token sums, component j = row slot j.
struct Acc { t0: vec4<i32>, t1: vec4<i32>, t2: vec4<i32>, t3: vec4<i32>,
             t4: vec4<i32>, t5: vec4<i32>, t6: vec4<i32>, t7: vec4<i32> }

var<private> second: bool; // this workgroup's rows come from w3 (uniform across the workgroup)

fn word(at: u32) -> u32 {
  if (second) { return w3[at]; }
  return w[at];
}

fn scale(row: u32) -> f32 {
  if (second) { return s3[row]; }
  return s[row];
}

fn ld(row: u32, q: u32) -> u32 {
  if (q < p.k4) { return word(row + q); }
  return 0u;
}

// Weight byte of column c in each of the thread's rows (row offsets × k4, local to their matrix), as f32.
fn col_bytes(rows: vec4<u32>, c: u32) -> vec4<f32> {
  let sh = 24u - 8u * (c % 4u);
  let q = c / 4u;
  var b = vec4<i32>(i32(word(rows.x + q) << sh) >> 24u, 0, 0, 0);
  if (R > 1u) { b.y = i32(word(rows.y + q) << sh) >> 24u; }
  if (R > 2u) {
    b.z = i32(word(rows.z + q) << sh) >> 24u;
    b.w = i32(word(rows.w + q) << sh) >> 24u;
  }
  return vec4<f32>(b);
}

// The outlier columns' f32 products for tokens t0 and t0 + 1, spread over the lanes like the int8 words
// (lane l takes outlier l, l + LANES, …), reduced beside the integer sums. Two tokens at a time, inside the
// reduction rounds: a thread holding every token's sums for its rows through the main loop cost registers
// the weight stream needed (wqkv at 8 rows 48.8 → 72.0 µs on the H100).
fn outlier_pair(rows: vec4<u32>, lane: u32, t0: u32) -> array<vec4<f32>, 2> {
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  let count = outliers[0];
  let K = 4u * p.k4;
  let t1 = min(t0 + 1u, TT - 1u);
  for (var j = lane; j < count; j += LANES) {
    let c = outliers[1u + j];
    let wb = col_bytes(rows, c);
    a += xo[t0 * K + c] * wb;
    b += xo[t1 * K + c] * wb;
  }
  return array<vec4<f32>, 2>(a, b);
}

fn words(rows: vec4<u32>, q: u32) -> vec4<u32> {
  var r = vec4<u32>(ld(rows.x, q), 0u, 0u, 0u);
  if (R > 1u) { r.y = ld(rows.y, q); }
  if (R > 2u) {
    r.z = ld(rows.z, q);
    r.w = ld(rows.w, q);
  }
  return r;
}

fn tok(t: u32, q: u32, ws: vec4<u32>) -> vec4<i32> {
  var a = 0u;
  if (q < p.k4) { a = xq[t * p.k4 + q]; }
  var r = vec4<i32>(dot4I8Packed(a, ws.x), 0, 0, 0);
  if (R > 1u) { r.y = dot4I8Packed(a, ws.y); }
  if (R > 2u) {
    r.z = dot4I8Packed(a, ws.z);
    r.w = dot4I8Packed(a, ws.w);
  }
  return r;
}

fn word_math(acc: ptr<function, Acc>, q: u32, ws: vec4<u32>) {
  (*acc).t0 += tok(0u, q, ws);
  if (TT > 1u) { (*acc).t1 += tok(1u, q, ws); }
  if (TT > 2u) { (*acc).t2 += tok(2u, q, ws); }
  if (TT > 3u) { (*acc).t3 += tok(3u, q, ws); }
  if (TT > 4u) { (*acc).t4 += tok(4u, q, ws); }
  if (TT > 5u) { (*acc).t5 += tok(5u, q, ws); }
  if (TT > 6u) { (*acc).t6 += tok(6u, q, ws); }
  if (TT > 7u) { (*acc).t7 += tok(7u, q, ws); }
}

fn pick(a: Acc, t: u32) -> vec4<i32> {
  switch t {
    case 0u: { return a.t0; }
    case 1u: { return a.t1; }
    case 2u: { return a.t2; }
    case 3u: { return a.t3; }
    case 4u: { return a.t4; }
    case 5u: { return a.t5; }
    case 6u: { return a.t6; }
    default: { return a.t7; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let G = WG / LANES;
  let lane = li % LANES;
  let grp = li / LANES;
  let first = (wg.y * p.groups_per_row + wg.x) * (R * G);
  second = first >= p.n1;
  let base = select(0u, p.n1, second); // first row of this workgroup's matrix
  let last = select(p.n1, p.n, second) - 1u;
  let rows = (min(vec4<u32>(first + grp) + vec4<u32>(0u, G, 2u * G, 3u * G), vec4<u32>(last)) - base) * p.k4;
  var acc = Acc();
  for (var q = lane; q < p.k4; q += U * LANES) {
    let b0 = words(rows, q);
    var b1 = vec4<u32>();
    var b2 = vec4<u32>();
    var b3 = vec4<u32>();
    if (U > 1u) { b1 = words(rows, q + LANES); }
    if (U > 2u) {
      b2 = words(rows, q + 2u * LANES);
      b3 = words(rows, q + 3u * LANES);
    }
    word_math(&acc, q, b0);
    if (U > 1u) { word_math(&acc, q + LANES, b1); }
    if (U > 2u) {
      word_math(&acc, q + 2u * LANES, b2);
      word_math(&acc, q + 3u * LANES, b3);
    }
  }
  let any_outliers = outliers[0] > 0u;
  // Two tokens a round: tree over the LANES lanes of each (token, slot), then one thread per output.
  for (var t0 = 0u; t0 < TT; t0 += 2u) {
    workgroupBarrier();
    var f = array<vec4<f32>, 2>();
    if (any_outliers) { f = outlier_pair(rows, lane, t0); }
    for (var tr = 0u; tr < 2u; tr++) {
      let v = pick(acc, min(t0 + tr, TT - 1u));
      for (var j = 0u; j < 4u; j++) {
        red[(tr * 4u + j) * WG + li] = v[j];
        redf[(tr * 4u + j) * WG + li] = f[tr][j];
      }
    }
    workgroupBarrier();
    for (var st = LANES / 2u; st > 0u; st >>= 1u) {
      if (lane < st) {
        for (var k = 0u; k < 8u; k++) {
          red[k * WG + li] += red[k * WG + li + st];
          if (any_outliers) { redf[k * WG + li] += redf[k * WG + li + st]; }
        }
      }
      workgroupBarrier();
    }
    // Thread (tr, grp, j): 2·G·R ≤ 256 outputs.
    let j = li % R;
    let g2 = (li / R) % G;
    let tr = li / (R * G);
    let t = t0 + tr;
    let row = first + g2 + j * G;
    if (tr < 2u && t < TT && row < p.n) {
      let lr = row - base;
      let at = (tr * 4u + j) * WG + g2 * LANES;
      var v = scale(lr) * (xs[t] * f32(red[at]) + redf[at]);
      if (p.accumulate != 0u) { v += out[t * p.n + row]; }
      out[t * p.n + row] = v;
    }
  }
}
