// Decode-path int8 matrix-vector kernel for several tokens (batched decode steps, a follow-up round's
// chunks) with x staged through workgroup memory; the three modes of matvec_i8.wgsl:
//   MODE 0 (linear):          out[t, n] (+)= s1[n] · Σ_k x[t, k]·W1[n, k] + bias[n]
//   MODE 1 (rmsNorm → linear): out[t, n]    = inv_t · s1[n] · Σ_k (x[t, k]·g[k])·W1[n, k] + bias[n]
//   MODE 2 (norm, W1 and W3, silu·up): out[t, n] = silu(a)·b, a = inv_t·s1[n]·Σ_k (x·g)·W1[n, k],
//                                      b = the same with W3, s3;  inv_t = rsqrt(mean_k x[t, k]² + eps)
// Why: matvec_i8 reads x straight from global memory, and at 8 tokens x is 196 KB (K = 6144), more than an
// SM's L1 keeps next to the streaming weights. Here each workgroup copies x once, chunk by chunk
// (coalesced, double-buffered), and every row group reads it from workgroup memory. The next chunk's
// weights and x are loaded before this chunk's math, so one barrier per chunk is all the synchronisation.
// The RMSNorm rides on the copy: x·g is what gets staged and Σx² is summed from the staged values.
// Threads: LANES lanes share a row along K (lane l takes words l, l+LANES, l+2·LANES, l+3·LANES of each
// chunk, four words per row), G = 256/LANES row groups; a thread's four row slots j hold rows
// first + grp + j·G (j < R, MODE < 2) or, in MODE 2, W1 rows first + grp + j·G in slots j < R and the
// same rows of W3 in slots 2 + j.
//
// Bindings: as matvec_i8.wgsl: 1 x [T, K] f32 viewed as vec4 (K % 4 == 0), 2 g [K] f32 as vec4 (MODE ≥ 1),
//           3 w1 [N, K] i8x4, 4 s1 [N] f32, 5 w3 [N, K] i8x4 (MODE 2; else w1 again), 6 s3 [N] (MODE 2),
//           7 bias [N] f32 (read only when has_bias), 8 out [T, N] f32 (not x).
// Params:   n = N, k4 = K/4, eps (f32), has_bias, groups_per_row, accumulate (MODE 0: out += result),
//           chunks = ceil(k4 / KC4).
// Overrides: MODE, TT = T (1..8), R ∈ {1, 2, 4} (MODE 2: 1 or 2), LANES ∈ {8, 16, 32, 64};
//            KC4 = 4·LANES vec4 of x per token and chunk, TT·KC4 ≤ 1024 (one staging buffer: 16 KiB).
// Grid:     ceil(N / (R·G)) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Workgroup memory: xs 32 KiB (two staging buffers, then the reduction), invs. Features: none.
struct Params {
  n: u32, k4: u32, eps: f32, has_bias: u32, groups_per_row: u32, accumulate: u32, chunks: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> w1: array<u32>;
@group(0) @binding(4) var<storage, read> s1: array<f32>;
@group(0) @binding(5) var<storage, read> w3: array<u32>;
@group(0) @binding(6) var<storage, read> s3: array<f32>;
@group(0) @binding(7) var<storage, read> bias: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

// #include int8

override MODE: u32 = 0u;
override TT: u32 = 1u;
override R: u32 = 4u;
override LANES: u32 = 32u;
const WG = 256u;
const XBUF = 1024u; // vec4 per staging buffer

var<workgroup> xs: array<vec4<f32>, 2048>;
var<workgroup> invs: array<f32, 8>;

// The four words of a chunk per row slot (.x … .w = words l, l+LANES, l+2·LANES, l+3·LANES).
struct Words { r0: vec4<u32>, r1: vec4<u32>, r2: vec4<u32>, r3: vec4<u32> }
// Per-token sums, component j = row slot j.
struct Acc { t0: vec4<f32>, t1: vec4<f32>, t2: vec4<f32>, t3: vec4<f32>,
             t4: vec4<f32>, t5: vec4<f32>, t6: vec4<f32>, t7: vec4<f32> }
// This thread's share of a chunk of x: elements li + m·256 (m < 4; TT·KC4 ≤ 1024 = 4·WG) and, MODE ≥ 1,
// the norm weight at their K position (the same for all four: KC4 divides 256).
struct XPart { a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>, g: vec4<f32> }
// MODE ≥ 1: Σx² of the thread's elements m = 0..3 (each always of one token: (li + m·256) / KC4).
struct Squares { a: f32, b: f32, c: f32, d: f32 }

fn kc4() -> u32 {
  return 4u * LANES;
}

// Whether row slot j is in use.
fn used(j: u32) -> bool {
  if (MODE == 2u) { return j % 2u < R; }
  return j < R;
}

// Word q of the row starting at word `row` of W1 (from3 false) or W3, 0 past the row's end (x is 0 there).
fn wword(from3: bool, row: u32, q: u32) -> u32 {
  if (q >= p.k4) { return 0u; }
  if (from3) { return w3[row + q]; }
  return w1[row + q];
}

fn row_words(from3: bool, row: u32, q0: u32) -> vec4<u32> {
  return vec4<u32>(wword(from3, row, q0), wword(from3, row, q0 + LANES), wword(from3, row, q0 + 2u * LANES),
                   wword(from3, row, q0 + 3u * LANES));
}

fn load_words(rows: vec4<u32>, q0: u32) -> Words {
  let m2 = MODE == 2u;
  var ws = Words();
  ws.r0 = row_words(false, rows.x, q0);
  if (used(1u)) { ws.r1 = row_words(false, rows.y, q0); }
  if (used(2u)) { ws.r2 = row_words(m2, rows.z, q0); }
  if (used(3u)) { ws.r3 = row_words(m2, rows.w, q0); }
  return ws;
}

// Element i of chunk c's staged x (token i / KC4, vec4 c·KC4 + i % KC4), 0 past K or past the tokens.
fn xload(c: u32, i: u32) -> vec4<f32> {
  let t = i / kc4();
  let q = c * kc4() + i % kc4();
  if (t < TT && q < p.k4) { return x[t * p.k4 + q]; }
  return vec4<f32>();
}

fn load_x(c: u32, li: u32) -> XPart {
  var xp = XPart();
  if (c >= p.chunks) { return xp; }
  let n = TT * kc4();
  xp.a = xload(c, li);
  if (n > WG) { xp.b = xload(c, li + WG); }
  if (n > 2u * WG) { xp.c = xload(c, li + 2u * WG); }
  if (n > 3u * WG) { xp.d = xload(c, li + 3u * WG); }
  let q = c * kc4() + li % kc4();
  if (MODE > 0u && q < p.k4) { xp.g = g[q]; }
  return xp;
}

// Stores the staged part (x·g in MODE ≥ 1) and adds its squares to the thread's Σx².
fn store_x(buf: u32, li: u32, xp: XPart, sq: ptr<function, Squares>) {
  let n = TT * kc4();
  var gq = vec4<f32>(1.0);
  if (MODE > 0u) {
    gq = xp.g;
    (*sq).a += dot(xp.a, xp.a);
    (*sq).b += dot(xp.b, xp.b);
    (*sq).c += dot(xp.c, xp.c);
    (*sq).d += dot(xp.d, xp.d);
  }
  xs[buf + li] = xp.a * gq;
  if (n > WG) { xs[buf + li + WG] = xp.b * gq; }
  if (n > 2u * WG) { xs[buf + li + 2u * WG] = xp.c * gq; }
  if (n > 3u * WG) { xs[buf + li + 3u * WG] = xp.d * gq; }
}

// Token t's sums over the row slots for one word position o of the chunk.
fn tok(buf: u32, t: u32, o: u32, a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>) -> vec4<f32> {
  let v = xs[buf + t * kc4() + o];
  var r = vec4<f32>(dot(v, a), 0.0, 0.0, 0.0);
  if (used(1u)) { r.y = dot(v, b); }
  if (used(2u)) { r.z = dot(v, c); }
  if (used(3u)) { r.w = dot(v, d); }
  return r;
}

// One word position of every row slot and token. Accumulators are named fields guarded by the constant
// TT (an array indexed by a loop variable may go to local memory).
fn word_math(acc: ptr<function, Acc>, buf: u32, o: u32, w: vec4<u32>) {
  let a = i8x4(w.x);
  var b = vec4<f32>();
  var c = vec4<f32>();
  var d = vec4<f32>();
  if (used(1u)) { b = i8x4(w.y); }
  if (used(2u)) { c = i8x4(w.z); }
  if (used(3u)) { d = i8x4(w.w); }
  (*acc).t0 += tok(buf, 0u, o, a, b, c, d);
  if (TT > 1u) { (*acc).t1 += tok(buf, 1u, o, a, b, c, d); }
  if (TT > 2u) { (*acc).t2 += tok(buf, 2u, o, a, b, c, d); }
  if (TT > 3u) { (*acc).t3 += tok(buf, 3u, o, a, b, c, d); }
  if (TT > 4u) { (*acc).t4 += tok(buf, 4u, o, a, b, c, d); }
  if (TT > 5u) { (*acc).t5 += tok(buf, 5u, o, a, b, c, d); }
  if (TT > 6u) { (*acc).t6 += tok(buf, 6u, o, a, b, c, d); }
  if (TT > 7u) { (*acc).t7 += tok(buf, 7u, o, a, b, c, d); }
}

// Token t's sums (a switch on named fields: registers, never local memory).
fn pick(a: Acc, t: u32) -> vec4<f32> {
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

// inv_t of every token into invs (MODE ≥ 1), from the threads' Σx² through xs (free after the loop).
fn norms(li: u32, sq: Squares) {
  let n = TT * kc4();
  xs[li].x = sq.a;
  if (n > WG) { xs[li + WG].x = sq.b; }
  if (n > 2u * WG) { xs[li + 2u * WG].x = sq.c; }
  if (n > 3u * WG) { xs[li + 3u * WG].x = sq.d; }
  workgroupBarrier();
  if (li < TT) {
    var s = 0.0;
    for (var i = 0u; i < kc4(); i++) { s += xs[li * kc4() + i].x; }
    invs[li] = inverseSqrt(s / f32(4u * p.k4) + p.eps);
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let G = WG / LANES;
  let lane = li % LANES;
  let grp = li / LANES;
  let first = (wg.y * p.groups_per_row + wg.x) * (R * G);
  var slot_rows = vec4<u32>(0u, G, 2u * G, 3u * G);
  if (MODE == 2u) { slot_rows = vec4<u32>(0u, G, 0u, G); }
  // Rows past N re-read row N−1 and write nothing.
  let rows = min(vec4<u32>(first + grp) + slot_rows, vec4<u32>(p.n - 1u)) * p.k4;

  var acc = Acc();
  var sq = Squares();
  var ws = load_words(rows, lane);
  store_x(0u, li, load_x(0u, li), &sq);
  workgroupBarrier();
  for (var c = 0u; c < p.chunks; c++) {
    let buf = (c % 2u) * XBUF;
    // The next chunk's loads first: they fly during this chunk's math.
    let xn = load_x(c + 1u, li);
    var wn = Words();
    if (c + 1u < p.chunks) { wn = load_words(rows, (c + 1u) * kc4() + lane); }
    word_math(&acc, buf, lane, vec4<u32>(ws.r0.x, ws.r1.x, ws.r2.x, ws.r3.x));
    word_math(&acc, buf, lane + LANES, vec4<u32>(ws.r0.y, ws.r1.y, ws.r2.y, ws.r3.y));
    word_math(&acc, buf, lane + 2u * LANES, vec4<u32>(ws.r0.z, ws.r1.z, ws.r2.z, ws.r3.z));
    word_math(&acc, buf, lane + 3u * LANES, vec4<u32>(ws.r0.w, ws.r1.w, ws.r2.w, ws.r3.w));
    store_x(XBUF - buf, li, xn, &sq);
    workgroupBarrier();
    ws = wn;
  }
  if (MODE > 0u) { norms(li, sq); }

  // Sums over the LANES lanes of each row group, token by token, through xs: slot (t·G + grp)·LANES + lane,
  // a tree over lanes.
  for (var t = 0u; t < TT; t++) {
    xs[(t * G + grp) * LANES + lane] = pick(acc, t);
  }
  workgroupBarrier();
  for (var st = LANES / 2u; st > 0u; st >>= 1u) {
    if (lane < st) {
      for (var t = 0u; t < TT; t++) {
        let i = (t * G + grp) * LANES + lane;
        xs[i] += xs[i + st];
      }
    }
    workgroupBarrier();
  }
  // One thread per (token t, row group, output slot j < R).
  let outs = TT * G * R;
  for (var i = li; i < outs; i += WG) {
    let j = i % R;
    let g2 = (i / R) % G;
    let t = i / (R * G);
    let row = first + g2 + j * G;
    if (row < p.n) {
      let sums = xs[(t * G + g2) * LANES];
      var inv = 1.0;
      if (MODE > 0u) { inv = invs[t]; }
      var v = inv * s1[row] * sums[j];
      if (MODE == 2u) {
        let up = inv * s3[row] * sums[2u + j];
        // exp(−v) overflowing to +inf for v ≪ 0 gives v / inf = −0, the right limit.
        v = v / (1.0 + exp(-v)) * up;
      } else {
        if (p.has_bias != 0u) { v += bias[row]; }
        if (MODE == 0u && p.accumulate != 0u) { v += out[t * p.n + row]; }
      }
      out[t * p.n + row] = v;
    }
  }
}
