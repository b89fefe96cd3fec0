// LLM.int8 step 4 (bitsandbytes MatMul8bitLt): the tiled int8 × int8 matrix multiply of many tokens with
// the outlier columns added in f32 by the epilogue,
//   out[t, n] (+)= (f32(Σ_k q[t, k]·CB[n, k])·(sca[t]/127) + Σ_{c outlier} x[t, c]·CB[n, c])·scale[n]
//                  + bias[n]
// q: the int8 rows of kernels/llm_int8_quantize.wgsl (outlier columns zero), CB: the int8 weights, scale =
// SCB/127. The int8 sum is exact in i32 through dot4I8Packed (four products a word; |Σ| ≤ 127²·K < 2³¹
// for K < 133 000). The outlier sum walks the compact list in f32, reading x[t, c] and the weight byte
// CB[n, c]: when there are at most 4·head4 of them, from compact copies (kernels/llm_int8_gather.wgsl: xo
// rows of 4·cap4 floats, wo rows of cap4 words), one 16-byte load of x and one word per row of weights for
// 4 columns; columns past the cap one by one, straight from x and CB (L1/L2). More than 4·head4 compact
// columns go wholly to the outlier GEMM (kernels/linear_tiled.wgsl, DYNK) instead: this per-thread loop
// costs like a small dense product at a few columns but runs at ~3.5 T multiply-adds/s, far below f32
// tiles, at hundreds (PERF.md v18). Whole-or-none against the loop always taking the first 64 measured
// neutral on an H100 (w2 with 2144 outlier columns 5.50 → 5.46 ms, ViT 7 tiles within 0.5 %: PERF.md v21).
// (Reading every listed column from x and CB on its own cost ViT fc1 +30 % at 64 columns on an H100;
// staging them through shared memory was no faster and cost 3–10 % with none.)
// The structure of kernels/linear_tiled.wgsl with u32 words in place of f32: a BM×BN output tile per
// workgroup of TX×TY threads, each thread a (4·RH)×(4·CW) micro-tile of i32 accumulators (rows
// {j·BM/RH + ty*4 + i : j < RH}, cols {c·BN/CW + tx*4 + i : c < CW}), so every shared read is one
// vec4<u32> = 4 rows (or columns) × 4 k. K advances BK at a time through two shared buffers: while one is
// multiplied, the next step's 16-byte global loads are in flight in registers and land in the other one,
// one barrier per step. Int8 data stays int8 in shared memory (a word holds 4 k), so a step moves a quarter
// of the bytes of linear_tiled's f32 step of the same BK.
//
// Bindings: 1 q        [T, Kp] i8x4 viewed as vec4<u32> (qw = Kp/4 words a row, Kp = K rounded up to 16,
//                      columns past K zero)
//           2 sca      [T] f32 per-row absmax of the non-outlier values
//           3 outliers [1 + K] u32: count, then the outlier columns
//           4 x        [T, K] f32 (read only at the outlier columns)
//           5 w        [N, K] i8x4 (kw = K/4 words a row)
//           6 w4       binding 5's buffer seen as vec4<u32> (VEC: 16-byte loads)
//           7 scale    [N] f32 (SCB/127)
//           8 bias     [N] f32 (read only when has_bias)
//           9 out      [T, N] f32, as u32 words (SPLIT 1: the partial sums, below)
//           10 xo      [T, 4·cap4] f32 as vec4: x at the first listed outlier columns (zero past the count)
//           11 wo      [N, cap4] i8x4: CB at those columns
// Params:   t = T, n = N, kw = K/4, qw, has_bias, accumulate (1: out += result, the residual add), cap4,
//           head4: a count ≤ 4·head4 is taken here whole, a larger one by kernels/linear_tiled.wgsl (DYNK,
//           kskip = 4·head4) up to the cap; head4 = cap4: every compact column here, no outlier GEMM
//           (columns past 4·cap4 always one by one here); kslice (SPLIT 1: K words a split, a multiple of
//           BK/4), splits (SPLIT 2: how many).
// Overrides: VEC (kw % 4 == 0: weight rows are 16-byte aligned; else 4 word loads a slot);
//           TX, TY (threads along N, M; multiples of 8 and 4), RH (2 or 4 row groups of 4), CW (1 or 2
//           column groups of 4), BK (32 or 64 k per step = 8 or 16 words), GM (tile rows per
//           group of the launch order). BM = 4·RH·TY, BN = 4·CW·TX; BM·BK/16 and BN·BK/16 must be 1..4
//           times TX·TY (src/ops/llm_int8.ts checks). linear_tiled's PF (a step's last k after the
//           barrier) was dropped: about 1 % slower here on an H100.
//           SPLIT (split K, where the output tiles alone are too few to fill the GPU): 0 the whole
//           product; 1 workgroup z sums only K words [z·kslice, (z+1)·kslice) and stores its raw i32
//           accumulators, every row and column of its tile, at parts[z, Tp, Np] in out (Tp, Np: T and N
//           rounded up to whole tiles); 2 binding 1 holds those parts instead of q: each thread adds its
//           accumulators' splits (exact: i32, so the sum is bit for bit the unsplit one) and the epilogue
//           runs as without a split.
// Grid:     (ceil(N/BN), ceil(T/BM), SPLIT 1: splits) workgroups of TX·TY.
// Features: packed_4x8_integer_dot_product (dot4I8Packed, core WGSL). Workgroup memory:
//           2·(BM+BN)·BK bytes (16 KiB at 64×64, BK = 64).
struct Params {
  t: u32, n: u32, kw: u32, qw: u32, has_bias: u32, accumulate: u32, cap4: u32, head4: u32, kslice: u32,
  splits: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> sca: array<f32>;
@group(0) @binding(3) var<storage, read> outliers: array<u32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<u32>;
// Alias of binding 5: WGSL cannot reinterpret a storage array, and w4 alone could not reach the last 1–3
// words of a buffer whose size is not a multiple of 16 (kw % 4 != 0), which the scalar view can.
@group(0) @binding(6) var<storage, read> w4: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> scale: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
// u32 words, so that SPLIT 1's i32 partial sums keep every bit (an f32 store need not keep a NaN's).
@group(0) @binding(9) var<storage, read_write> out: array<u32>;
@group(0) @binding(10) var<storage, read> xo: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> wo: array<u32>;

// #include int8

override VEC: bool = true;
override TX: u32 = 16u;
override TY: u32 = 16u;
override RH: u32 = 2u;
override CW: u32 = 2u;
override BK: u32 = 32u;
override GM: u32 = 8u;
override SPLIT: u32 = 0u;

override NT: u32 = TX * TY;
override BM: u32 = 4u * RH * TY;
override BN: u32 = 4u * CW * TX;
override SW: u32 = BK / 4u; // words per step: the k rows of a shared tile
override SQ: u32 = BK / 16u; // 16-byte global loads per tile row per step
override XSL: u32 = BM * SQ / NT; // q loads per thread per step
override WSL: u32 = BN * SQ / NT; // weight loads per thread per step
override XV: u32 = BM * SW / 4u;
override WV: u32 = BN * SW / 4u;

// Word-major tiles: xs[k * BM/4 + (c ^ swz(k/4))] holds word k of rows 4c..4c+3 (ws likewise for weight
// rows). The XOR swizzle (< 8, so it stays within an aligned group of 8 vec4) makes the transposing scalar
// stores conflict-free (a warp stores 32/SQ rows × SQ load slots) while the vec4 reads of a warp (4 ty, 8 tx
// values) still hit distinct bank groups. Two named buffers instead of one indexed by the step's parity:
// with literal k every shared index is a thread constant plus an immediate.
var<workgroup> xs0: array<vec4<u32>, XV>;
var<workgroup> ws0: array<vec4<u32>, WV>;
var<workgroup> xs1: array<vec4<u32>, XV>;
var<workgroup> ws1: array<vec4<u32>, WV>;

// Every per-thread value is a named scalar or vec4 indexed by constants only: a private array indexed by a
// loop variable may be placed in local memory by the driver (on an H200 that cost linear_tiled 9×).
var<private> lid: u32;
var<private> tx: u32;
var<private> ty: u32;
var<private> m0: u32;
var<private> n0: u32;
// Accumulators: row i of the micro-tile × column group a or b (a8..a15, b8..b15 only when RH = 4; b only
// when CW = 2).
var<private> a0: vec4<i32>;
var<private> a1: vec4<i32>;
var<private> a2: vec4<i32>;
var<private> a3: vec4<i32>;
var<private> a4: vec4<i32>;
var<private> a5: vec4<i32>;
var<private> a6: vec4<i32>;
var<private> a7: vec4<i32>;
var<private> a8: vec4<i32>;
var<private> a9: vec4<i32>;
var<private> a10: vec4<i32>;
var<private> a11: vec4<i32>;
var<private> a12: vec4<i32>;
var<private> a13: vec4<i32>;
var<private> a14: vec4<i32>;
var<private> a15: vec4<i32>;
var<private> b0: vec4<i32>;
var<private> b1: vec4<i32>;
var<private> b2: vec4<i32>;
var<private> b3: vec4<i32>;
var<private> b4: vec4<i32>;
var<private> b5: vec4<i32>;
var<private> b6: vec4<i32>;
var<private> b7: vec4<i32>;
var<private> b8: vec4<i32>;
var<private> b9: vec4<i32>;
var<private> b10: vec4<i32>;
var<private> b11: vec4<i32>;
var<private> b12: vec4<i32>;
var<private> b13: vec4<i32>;
var<private> b14: vec4<i32>;
var<private> b15: vec4<i32>;
// The next step's global loads, held while the current step is multiplied: 4 consecutive words (16 k) of
// one q row (sx) or one weight row (sw).
var<private> sx0: vec4<u32>;
var<private> sx1: vec4<u32>;
var<private> sx2: vec4<u32>;
var<private> sx3: vec4<u32>;
var<private> sw0: vec4<u32>;
var<private> sw1: vec4<u32>;
var<private> sw2: vec4<u32>;
var<private> sw3: vec4<u32>;

fn swz(g: u32) -> u32 {
  return g * (8u / SQ);
}

// ---- global → registers. Load slot i of this thread: tile row lid/SQ + i·NT/SQ, words 4·(lid % SQ)..+3
// of the step. Rows past the end are clamped (their results are never stored). q words past qw read as
// zero and q's pad words (K/4..qw) are zero, so weight words past K/4 only need a valid address: their
// products are 0.

fn tile_row(i: u32) -> u32 {
  return lid / SQ + i * (NT / SQ);
}

fn load_x(i: u32, k0: u32) -> vec4<u32> {
  let row = min(m0 + tile_row(i), p.t - 1u);
  let v = k0 / 4u + lid % SQ;
  let qv = p.qw / 4u;
  return select(vec4<u32>(), q4[row * qv + min(v, qv - 1u)], v < qv);
}

fn load_w(i: u32, k0: u32) -> vec4<u32> {
  let row = min(n0 + tile_row(i), p.n - 1u);
  let k = k0 + 4u * (lid % SQ);
  if (VEC) {
    let kv = p.kw / 4u;
    return w4[row * kv + min(k / 4u, kv - 1u)];
  }
  let base = row * p.kw;
  let last = p.kw - 1u;
  return vec4<u32>(w[base + min(k, last)], w[base + min(k + 1u, last)], w[base + min(k + 2u, last)],
                   w[base + min(k + 3u, last)]);
}

// k0: the step's first word.
fn stage(k0: u32) {
  sx0 = load_x(0u, k0);
  if (XSL > 1u) { sx1 = load_x(1u, k0); }
  if (XSL > 2u) { sx2 = load_x(2u, k0); }
  if (XSL > 3u) { sx3 = load_x(3u, k0); }
  sw0 = load_w(0u, k0);
  if (WSL > 1u) { sw1 = load_w(1u, k0); }
  if (WSL > 2u) { sw2 = load_w(2u, k0); }
  if (WSL > 3u) { sw3 = load_w(3u, k0); }
}

// ---- registers → shared (transposed to word-major, swizzled).

// Slot i's 4 words (4g..4g+3 of one row, g = lid % SQ) into word rows 4g..4g+3, vec4 (row/4 ^ swz(g)),
// lane row % 4.
fn put_x(odd: bool, i: u32, v: vec4<u32>) {
  let r = tile_row(i);
  let g = lid % SQ;
  let at = 4u * g * (BM / 4u) + ((r / 4u) ^ swz(g));
  let e = r % 4u;
  let s = BM / 4u;
  if (odd) {
    xs1[at][e] = v.x;
    xs1[at + s][e] = v.y;
    xs1[at + 2u * s][e] = v.z;
    xs1[at + 3u * s][e] = v.w;
  } else {
    xs0[at][e] = v.x;
    xs0[at + s][e] = v.y;
    xs0[at + 2u * s][e] = v.z;
    xs0[at + 3u * s][e] = v.w;
  }
}

fn put_w(odd: bool, i: u32, v: vec4<u32>) {
  let r = tile_row(i);
  let g = lid % SQ;
  let at = 4u * g * (BN / 4u) + ((r / 4u) ^ swz(g));
  let e = r % 4u;
  let s = BN / 4u;
  if (odd) {
    ws1[at][e] = v.x;
    ws1[at + s][e] = v.y;
    ws1[at + 2u * s][e] = v.z;
    ws1[at + 3u * s][e] = v.w;
  } else {
    ws0[at][e] = v.x;
    ws0[at + s][e] = v.y;
    ws0[at + 2u * s][e] = v.z;
    ws0[at + 3u * s][e] = v.w;
  }
}

fn put(odd: bool) {
  put_x(odd, 0u, sx0);
  if (XSL > 1u) { put_x(odd, 1u, sx1); }
  if (XSL > 2u) { put_x(odd, 2u, sx2); }
  if (XSL > 3u) { put_x(odd, 3u, sx3); }
  put_w(odd, 0u, sw0);
  if (WSL > 1u) { put_w(odd, 1u, sw1); }
  if (WSL > 2u) { put_w(odd, 2u, sw2); }
  if (WSL > 3u) { put_w(odd, 3u, sw3); }
}

// ---- the multiply: one word (4 k) of the micro-tile from RH + CW vec4 shared reads. x<j>: rows of row
// group j, w<c>: columns of column group c; fragments a tiling does not use are zero and their products
// compile away.

// One row's word against a column group's 4 words: 4 int8 dot products of 4.
fn dots(a: u32, w: vec4<u32>) -> vec4<i32> {
  return vec4<i32>(dot4I8Packed(a, w.x), dot4I8Packed(a, w.y), dot4I8Packed(a, w.z), dot4I8Packed(a, w.w));
}

fn dot_tile(x0: vec4<u32>, x1: vec4<u32>, x2: vec4<u32>, x3: vec4<u32>, w0: vec4<u32>, w1: vec4<u32>) {
  a0 += dots(x0.x, w0);
  a1 += dots(x0.y, w0);
  a2 += dots(x0.z, w0);
  a3 += dots(x0.w, w0);
  a4 += dots(x1.x, w0);
  a5 += dots(x1.y, w0);
  a6 += dots(x1.z, w0);
  a7 += dots(x1.w, w0);
  if (CW > 1u) {
    b0 += dots(x0.x, w1);
    b1 += dots(x0.y, w1);
    b2 += dots(x0.z, w1);
    b3 += dots(x0.w, w1);
    b4 += dots(x1.x, w1);
    b5 += dots(x1.y, w1);
    b6 += dots(x1.z, w1);
    b7 += dots(x1.w, w1);
  }
  if (RH == 4u) {
    a8 += dots(x2.x, w0);
    a9 += dots(x2.y, w0);
    a10 += dots(x2.z, w0);
    a11 += dots(x2.w, w0);
    a12 += dots(x3.x, w0);
    a13 += dots(x3.y, w0);
    a14 += dots(x3.z, w0);
    a15 += dots(x3.w, w0);
    if (CW > 1u) {
      b8 += dots(x2.x, w1);
      b9 += dots(x2.y, w1);
      b10 += dots(x2.z, w1);
      b11 += dots(x2.w, w1);
      b12 += dots(x3.x, w1);
      b13 += dots(x3.y, w1);
      b14 += dots(x3.z, w1);
      b15 += dots(x3.w, w1);
    }
  }
}

// k (the word of the step) is always a literal at the call sites, so the k loop is unrolled in the source
// and every index below is a per-thread value plus a constant. Row group j is vec4 j·TY + ty of a word
// row, column group c vec4 c·TX + tx.
fn mac0(k: u32) {
  let g = swz(k / 4u);
  let xr = k * (BM / 4u);
  let wr = k * (BN / 4u);
  var x2 = vec4<u32>();
  var x3 = vec4<u32>();
  var w1 = vec4<u32>();
  if (RH == 4u) {
    x2 = xs0[xr + ((2u * TY + ty) ^ g)];
    x3 = xs0[xr + ((3u * TY + ty) ^ g)];
  }
  if (CW > 1u) { w1 = ws0[wr + ((TX + tx) ^ g)]; }
  dot_tile(xs0[xr + (ty ^ g)], xs0[xr + ((TY + ty) ^ g)], x2, x3, ws0[wr + (tx ^ g)], w1);
}

fn mac1(k: u32) {
  let g = swz(k / 4u);
  let xr = k * (BM / 4u);
  let wr = k * (BN / 4u);
  var x2 = vec4<u32>();
  var x3 = vec4<u32>();
  var w1 = vec4<u32>();
  if (RH == 4u) {
    x2 = xs1[xr + ((2u * TY + ty) ^ g)];
    x3 = xs1[xr + ((3u * TY + ty) ^ g)];
  }
  if (CW > 1u) { w1 = ws1[wr + ((TX + tx) ^ g)]; }
  dot_tile(xs1[xr + (ty ^ g)], xs1[xr + ((TY + ty) ^ g)], x2, x3, ws1[wr + (tx ^ g)], w1);
}

fn step0() {
  mac0(0u); mac0(1u); mac0(2u); mac0(3u); mac0(4u); mac0(5u); mac0(6u); mac0(7u);
  if (SW > 8u) {
    mac0(8u); mac0(9u); mac0(10u); mac0(11u); mac0(12u); mac0(13u); mac0(14u); mac0(15u);
  }
}

fn step1() {
  mac1(0u); mac1(1u); mac1(2u); mac1(3u); mac1(4u); mac1(5u); mac1(6u); mac1(7u);
  if (SW > 8u) {
    mac1(8u); mac1(9u); mac1(10u); mac1(11u); mac1(12u); mac1(13u); mac1(14u); mac1(15u);
  }
}

// ---- epilogue: out[m, n .. n+4) = (f32(v)·sca/127 + outliers)·scale + bias (+ out), bounds-checked per
// element.

fn col_scale(n: u32) -> vec4<f32> {
  let last = p.n - 1u;
  return vec4<f32>(
    scale[min(n, last)], scale[min(n + 1u, last)], scale[min(n + 2u, last)], scale[min(n + 3u, last)],
  );
}

fn col_bias(n: u32) -> vec4<f32> {
  if (p.has_bias == 0u) { return vec4<f32>(); }
  let last = p.n - 1u;
  return vec4<f32>(
    bias[min(n, last)], bias[min(n + 1u, last)], bias[min(n + 2u, last)], bias[min(n + 3u, last)],
  );
}

// CB[n .. n+4, c] as f32: byte c % 4 of word c/4 of each row, sign-extended by the arithmetic shift.
fn weight_col(n: u32, c: u32) -> vec4<f32> {
  let last = p.n - 1u;
  let at = c / 4u;
  let v = vec4<u32>(w[min(n, last) * p.kw + at], w[min(n + 1u, last) * p.kw + at],
                    w[min(n + 2u, last) * p.kw + at], w[min(n + 3u, last) * p.kw + at]);
  return vec4<f32>(bitcast<vec4<i32>>(v << vec4<u32>(24u - 8u * (c % 4u))) >> vec4<u32>(24u));
}

fn store_one(m: u32, col: u32, v: f32) {
  if (col < p.n) {
    let at = m * p.n + col;
    var o = v;
    if (p.accumulate != 0u) { o += bitcast<f32>(out[at]); }
    out[at] = bitcast<u32>(o);
  }
}

fn store_out(m: u32, n: u32, v: vec4<f32>) {
  if (m >= p.t) { return; }
  store_one(m, n, v.x);
  store_one(m, n + 1u, v.y);
  store_one(m, n + 2u, v.z);
  store_one(m, n + 3u, v.w);
}

// Rows r..r+3 of one column group: v<i> is row r + i. The outlier columns are walked here, per 4×4 block,
// so only 16 more f32 are live beside the accumulators; x and the weight bytes come from L1/L2.
fn store4(r: u32, n: u32, s: vec4<f32>, o: vec4<f32>, cnt: u32, v0: vec4<i32>, v1: vec4<i32>,
          v2: vec4<i32>, v3: vec4<i32>) {
  let last = p.t - 1u;
  let r0 = min(r, last);
  let r1 = min(r + 1u, last);
  let r2 = min(r + 2u, last);
  let r3 = min(r + 3u, last);
  var e0 = vec4<f32>(v0) * (sca[r0] / 127.0);
  var e1 = vec4<f32>(v1) * (sca[r1] / 127.0);
  var e2 = vec4<f32>(v2) * (sca[r2] / 127.0);
  var e3 = vec4<f32>(v3) * (sca[r3] / 127.0);
  // The compact columns, 4 at a time: row i's x word against each of the 4 columns' weight words.
  let words = select(0u, min((cnt + 3u) / 4u, p.cap4), cnt <= 4u * p.head4 || p.head4 == p.cap4);
  let last_n = p.n - 1u;
  for (var j4 = 0u; j4 < words; j4++) {
    let x0 = xo[r0 * p.cap4 + j4];
    let x1 = xo[r1 * p.cap4 + j4];
    let x2 = xo[r2 * p.cap4 + j4];
    let x3 = xo[r3 * p.cap4 + j4];
    let w0 = i8x4(wo[min(n, last_n) * p.cap4 + j4]);
    let w1 = i8x4(wo[min(n + 1u, last_n) * p.cap4 + j4]);
    let w2 = i8x4(wo[min(n + 2u, last_n) * p.cap4 + j4]);
    let w3 = i8x4(wo[min(n + 3u, last_n) * p.cap4 + j4]);
    e0 += vec4<f32>(dot(x0, w0), dot(x0, w1), dot(x0, w2), dot(x0, w3));
    e1 += vec4<f32>(dot(x1, w0), dot(x1, w1), dot(x1, w2), dot(x1, w3));
    e2 += vec4<f32>(dot(x2, w0), dot(x2, w1), dot(x2, w2), dot(x2, w3));
    e3 += vec4<f32>(dot(x3, w0), dot(x3, w1), dot(x3, w2), dot(x3, w3));
  }
  let k = 4u * p.kw;
  for (var j = 4u * p.cap4; j < cnt; j++) {
    let c = min(outliers[1u + j], k - 1u);
    let wc = weight_col(n, c);
    e0 += x[r0 * k + c] * wc;
    e1 += x[r1 * k + c] * wc;
    e2 += x[r2 * k + c] * wc;
    e3 += x[r3 * k + c] * wc;
  }
  store_out(r, n, e0 * s + o);
  store_out(r + 1u, n, e1 * s + o);
  store_out(r + 2u, n, e2 * s + o);
  store_out(r + 3u, n, e3 * s + o);
}

// ---- split K. The micro-tile's rows and columns, as the epilogue below walks them: accumulator a<4j+i>
// (b<4j+i>) is row m0 + ty·4 + j·BM/RH + i at columns n0 + tx·4 (+ BN/CW) .. +3.

fn part_at(z: u32, tp: u32, np: u32, row: u32, n: u32) -> u32 {
  return (z * tp + row) * np + n;
}

fn put_part(at: u32, v: vec4<i32>) {
  out[at] = bitcast<u32>(v.x);
  out[at + 1u] = bitcast<u32>(v.y);
  out[at + 2u] = bitcast<u32>(v.z);
  out[at + 3u] = bitcast<u32>(v.w);
}

// Rows r..r+3 of one column group (SPLIT 1).
fn put_parts4(z: u32, tp: u32, np: u32, r: u32, n: u32, v0: vec4<i32>, v1: vec4<i32>, v2: vec4<i32>,
              v3: vec4<i32>) {
  put_part(part_at(z, tp, np, r, n), v0);
  put_part(part_at(z, tp, np, r + 1u, n), v1);
  put_part(part_at(z, tp, np, r + 2u, n), v2);
  put_part(part_at(z, tp, np, r + 3u, n), v3);
}

fn store_parts(z: u32, tp: u32, np: u32) {
  let r0 = m0 + ty * 4u;
  let r1 = r0 + BM / RH;
  let r2 = r1 + BM / RH;
  let r3 = r2 + BM / RH;
  let nA = n0 + tx * 4u;
  put_parts4(z, tp, np, r0, nA, a0, a1, a2, a3);
  put_parts4(z, tp, np, r1, nA, a4, a5, a6, a7);
  if (RH == 4u) {
    put_parts4(z, tp, np, r2, nA, a8, a9, a10, a11);
    put_parts4(z, tp, np, r3, nA, a12, a13, a14, a15);
  }
  if (CW > 1u) {
    let nB = nA + BN / CW;
    put_parts4(z, tp, np, r0, nB, b0, b1, b2, b3);
    put_parts4(z, tp, np, r1, nB, b4, b5, b6, b7);
    if (RH == 4u) {
      put_parts4(z, tp, np, r2, nB, b8, b9, b10, b11);
      put_parts4(z, tp, np, r3, nB, b12, b13, b14, b15);
    }
  }
}

// SPLIT 2: row `row`, columns n..n+3 summed over the splits (binding 1 holds the parts as vec4 words; np
// is a multiple of 4). i32 addition wraps, so the order of the splits cannot change the sum.
fn part_sum(tp: u32, np: u32, row: u32, n: u32) -> vec4<i32> {
  var s = vec4<i32>();
  for (var z = 0u; z < p.splits; z++) {
    s += bitcast<vec4<i32>>(q4[part_at(z, tp, np, row, n) / 4u]);
  }
  return s;
}

fn sum_parts(tp: u32, np: u32) {
  let r0 = m0 + ty * 4u;
  let r1 = r0 + BM / RH;
  let r2 = r1 + BM / RH;
  let r3 = r2 + BM / RH;
  let nA = n0 + tx * 4u;
  a0 = part_sum(tp, np, r0, nA);
  a1 = part_sum(tp, np, r0 + 1u, nA);
  a2 = part_sum(tp, np, r0 + 2u, nA);
  a3 = part_sum(tp, np, r0 + 3u, nA);
  a4 = part_sum(tp, np, r1, nA);
  a5 = part_sum(tp, np, r1 + 1u, nA);
  a6 = part_sum(tp, np, r1 + 2u, nA);
  a7 = part_sum(tp, np, r1 + 3u, nA);
  if (RH == 4u) {
    a8 = part_sum(tp, np, r2, nA);
    a9 = part_sum(tp, np, r2 + 1u, nA);
    a10 = part_sum(tp, np, r2 + 2u, nA);
    a11 = part_sum(tp, np, r2 + 3u, nA);
    a12 = part_sum(tp, np, r3, nA);
    a13 = part_sum(tp, np, r3 + 1u, nA);
    a14 = part_sum(tp, np, r3 + 2u, nA);
    a15 = part_sum(tp, np, r3 + 3u, nA);
  }
  if (CW > 1u) {
    let nB = nA + BN / CW;
    b0 = part_sum(tp, np, r0, nB);
    b1 = part_sum(tp, np, r0 + 1u, nB);
    b2 = part_sum(tp, np, r0 + 2u, nB);
    b3 = part_sum(tp, np, r0 + 3u, nB);
    b4 = part_sum(tp, np, r1, nB);
    b5 = part_sum(tp, np, r1 + 1u, nB);
    b6 = part_sum(tp, np, r1 + 2u, nB);
    b7 = part_sum(tp, np, r1 + 3u, nB);
    if (RH == 4u) {
      b8 = part_sum(tp, np, r2, nB);
      b9 = part_sum(tp, np, r2 + 1u, nB);
      b10 = part_sum(tp, np, r2 + 2u, nB);
      b11 = part_sum(tp, np, r2 + 3u, nB);
      b12 = part_sum(tp, np, r3, nB);
      b13 = part_sum(tp, np, r3 + 1u, nB);
      b14 = part_sum(tp, np, r3 + 2u, nB);
      b15 = part_sum(tp, np, r3 + 3u, nB);
    }
  }
}

@compute @workgroup_size(NT)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  // Launch order: GM tile rows at a time, down the rows first, so the workgroups resident together share
  // a few q row blocks and a few weight column blocks in L2.
  let id = wg.y * groups.x + wg.x;
  let per_group = GM * groups.x;
  let first = (id / per_group) * GM;
  let rows = min(groups.y - first, GM);
  m0 = (first + (id % per_group) % rows) * BM;
  n0 = ((id % per_group) / rows) * BN;
  // A warp computes a 4 (ty) × 8 (tx) block of micro-tiles: its q reads are 4 distinct vec4, its weight
  // reads 8, one shared-memory wavefront each. The redundant "% NT", "% TX", "% TY" bound these values
  // for the driver's compiler, which may then drop the clamp WGSL puts on every shared-memory index.
  lid = li % NT;
  let warp = lid / 32u;
  let lane = lid % 32u;
  tx = ((warp % (TX / 8u)) * 8u + lane % 8u) % TX;
  ty = ((warp / (TX / 8u)) * 4u + lane / 8u) % TY;

  let tp = groups.y * BM;
  let np = groups.x * BN;
  if (SPLIT == 2u) {
    sum_parts(tp, np);
  } else {
    var kbeg = 0u;
    var kend = p.kw;
    if (SPLIT == 1u) {
      kbeg = min(wg.z * p.kslice, kend);
      kend = min(kend, kbeg + p.kslice);
    }
    // The loads of the step after a split's last land in a buffer nobody multiplies (kslice % SW == 0).
    let steps = (kend - kbeg + SW - 1u) / SW;
    stage(kbeg);
    put(false);
    workgroupBarrier();
    for (var s = 0u; s < steps; s += 2u) {
      stage(kbeg + (s + 1u) * SW);
      step0();
      put(true);
      workgroupBarrier();
      if (s + 1u < steps) {
        stage(kbeg + (s + 2u) * SW);
        step1();
        put(false);
        workgroupBarrier();
      }
    }
  }
  if (SPLIT == 1u) {
    store_parts(wg.z, tp, np);
    return;
  }

  let cnt = min(outliers[0], 4u * p.kw);
  let r0 = m0 + ty * 4u;
  let r1 = r0 + BM / RH;
  let r2 = r1 + BM / RH;
  let r3 = r2 + BM / RH;
  let nA = n0 + tx * 4u;
  let sA = col_scale(nA);
  let oA = col_bias(nA);
  store4(r0, nA, sA, oA, cnt, a0, a1, a2, a3);
  store4(r1, nA, sA, oA, cnt, a4, a5, a6, a7);
  if (RH == 4u) {
    store4(r2, nA, sA, oA, cnt, a8, a9, a10, a11);
    store4(r3, nA, sA, oA, cnt, a12, a13, a14, a15);
  }
  if (CW > 1u) {
    let nB = nA + BN / CW;
    let sB = col_scale(nB);
    let oB = col_bias(nB);
    store4(r0, nB, sB, oB, cnt, b0, b1, b2, b3);
    store4(r1, nB, sB, oB, cnt, b4, b5, b6, b7);
    if (RH == 4u) {
      store4(r2, nB, sB, oB, cnt, b8, b9, b10, b11);
      store4(r3, nB, sB, oB, cnt, b12, b13, b14, b15);
    }
  }
}
