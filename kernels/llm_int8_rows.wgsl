// The activation side of bitsandbytes' LLM.int8 (MatMul8bitLt, threshold θ; REFERENCE §2) for a few rows —
// decode steps and short chunks, T ≤ 8 — in ONE workgroup, so the column-wide and row-wide maxima need no
// second dispatch:
//   v[t, k]    the row as the layer multiplies it: x itself, RMSNorm(x)·g (NORM, the layer's norm folded
//              in) or silu(gate)·up (SILU: x holds [gate | up] per row, the feed-forward's w2 input);
//   outlier k  some row has |v[t, k]| ≥ θ; such columns leave the int8 product and are multiplied in f32
//              by the matrix kernel (their indices listed in ascending order);
//   sca[t]     max |v[t, k]| over the values below θ (0 if none); xs[t] = sca[t] / 127;
//   q[t, k]    0 in an outlier column, else round_half_even(v[t, k] · (127 / sca[t])) (0 when sca = 0),
//              four to a u32 (byte j of word i = column 4i + j, the int8 weights' layout).
// v is written out (xn) when it is not x itself, for the outlier columns' f32 product.
// Phases: [NORM: every thread sums x² of its columns of every row; tree] → v of its columns: row maxima
// below θ, outlier bits into a workgroup bitmap; tree of the maxima → the bitmap compacted (each thread two
// adjacent words, a scan of their popcounts) → q from v recomputed (x is re-read from L2, not kept: at K =
// 16384 a thread's share of 8 rows is 512 values).
//
// Bindings: 1 x [T, K] f32 as vec4 (SILU: [T, 2K], gate then up), 2 g [K] f32 as vec4 (NORM; any buffer
//   otherwise), 3 xn [T, K] f32 as vec4 (written when NORM or SILU; any writable buffer otherwise),
//   4 q [T, K/4] u32, 5 xs [T] f32, 6 outliers [1 + K] u32: count, then the columns.
// Params: t = T (1..8), k4 = K/4 (K ≤ 16384), eps (NORM), threshold θ (> 0).
// Overrides: MODE 0 plain, 1 NORM, 2 SILU.
// Grid: 1 workgroup of 256. Features: none (pack4xI8 is core WGSL).
struct Params { t: u32, k4: u32, eps: f32, threshold: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> xn: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> q: array<u32>;
@group(0) @binding(5) var<storage, read_write> xs: array<f32>;
@group(0) @binding(6) var<storage, read_write> outliers: array<u32>;

override MODE: u32 = 0u;
const WG = 256u;
const MAX_WORDS = 512u; // outlier bitmap words: K ≤ 16384

var<workgroup> red: array<f32, 2048>; // [8 rows][256 threads]
var<workgroup> bits: array<atomic<u32>, MAX_WORDS>;
var<workgroup> scan: array<u32, WG>;
var<workgroup> rnorm: array<f32, 8>; // NORM: 1/rms of each row
var<workgroup> rinv: array<f32, 8>; // 127/sca of each row (0 when sca = 0)

fn silu(a: vec4<f32>) -> vec4<f32> {
  return a / (vec4<f32>(1.0) + exp(-a));
}

// v of row t, vec4 column c.
fn value(t: u32, c: u32) -> vec4<f32> {
  if (MODE == 2u) {
    let at = t * 2u * p.k4 + c;
    return silu(x[at]) * x[at + p.k4];
  }
  let a = x[t * p.k4 + c];
  if (MODE == 1u) { return a * rnorm[t] * g[c]; }
  return a;
}

fn tree_max(li: u32) {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      for (var t = 0u; t < p.t; t++) { red[t * WG + li] = max(red[t * WG + li], red[t * WG + li + s]); }
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  let K = 4u * p.k4;
  for (var i = li; i < MAX_WORDS; i += WG) { atomicStore(&bits[i], 0u); }
  if (MODE == 1u) {
    for (var t = 0u; t < p.t; t++) {
      var ss = 0.0;
      for (var c = li; c < p.k4; c += WG) {
        let a = x[t * p.k4 + c];
        ss += dot(a, a);
      }
      red[t * WG + li] = ss;
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (li < s) {
        for (var t = 0u; t < p.t; t++) { red[t * WG + li] += red[t * WG + li + s]; }
      }
      workgroupBarrier();
    }
    if (li < p.t) { rnorm[li] = inverseSqrt(red[li * WG] / f32(K) + p.eps); }
  }
  workgroupBarrier();

  let th = vec4<f32>(p.threshold);
  for (var t = 0u; t < p.t; t++) {
    var m = vec4<f32>(0.0);
    for (var c = li; c < p.k4; c += WG) {
      let v = value(t, c);
      if (MODE != 0u) { xn[t * p.k4 + c] = v; }
      let a = abs(v);
      let big = a >= th;
      m = max(m, select(a, vec4<f32>(0.0), big));
      if (any(big)) {
        let nib = select(0u, 1u, big.x) | select(0u, 2u, big.y) | select(0u, 4u, big.z) | select(0u, 8u, big.w);
        atomicOr(&bits[c / 8u], nib << (4u * (c % 8u)));
      }
    }
    red[t * WG + li] = max(max(m.x, m.y), max(m.z, m.w));
  }
  workgroupBarrier();
  tree_max(li);

  // Compaction: thread li owns bitmap words 2li and 2li+1, so a scan over threads keeps columns ascending.
  let w0 = atomicLoad(&bits[2u * li]);
  let w1 = atomicLoad(&bits[2u * li + 1u]);
  let own = countOneBits(w0) + countOneBits(w1);
  scan[li] = own;
  workgroupBarrier();
  for (var s = 1u; s < WG; s <<= 1u) {
    var add = 0u;
    if (li >= s) { add = scan[li - s]; }
    workgroupBarrier();
    scan[li] += add;
    workgroupBarrier();
  }
  var at = 1u + scan[li] - own;
  for (var j = 0u; j < 64u; j++) {
    let word = select(w1, w0, j < 32u);
    if (((word >> (j % 32u)) & 1u) != 0u) {
      outliers[at] = 64u * li + j;
      at++;
    }
  }
  if (li == WG - 1u) { outliers[0] = scan[WG - 1u]; }
  if (li < p.t) {
    let sca = red[li * WG];
    xs[li] = sca / 127.0;
    rinv[li] = select(0.0, 127.0 / sca, sca > 0.0);
  }
  workgroupBarrier();

  for (var t = 0u; t < p.t; t++) {
    let inv = rinv[t];
    for (var c = li; c < p.k4; c += WG) {
      var v = value(t, c);
      let nib = (atomicLoad(&bits[c / 8u]) >> (4u * (c % 8u))) & 0xFu;
      let out = vec4<bool>((nib & 1u) != 0u, (nib & 2u) != 0u, (nib & 4u) != 0u, (nib & 8u) != 0u);
      let r = clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0));
      q[t * p.k4 + c] = pack4xI8(vec4<i32>(select(r, vec4<f32>(0.0), out)));
    }
  }
}
