// The int8 linear for a few tokens (T ≤ 8: decode steps, short chunks) in bitsandbytes' LLM.int8 numerics
// (INT8_MATMUL=llm-int8; the activation side from kernels/llm_int8_rows_scan.wgsl + llm_int8_rows_pack.wgsl),
// through dot4I8Packed — four int8 products summed into an i32 by one instruction, so the weights are never
// widened to f32 and x moves as 1 byte an element:
//   out[t, n] (+)= s[n] · (xs[t] · Σ_q dot4I8Packed(xq[t, q], W[n, q]) + Σ_{c outlier} xo[t, c] · W[n, c])
// Every lane reads 16 bytes (four i8x4 words) of a row and of each token's int8 row at a time: with one word
// a load (this kernel's first form), a lane at 8 tokens issued R + 8 loads for 4·R dot products, and 32
// lanes a row left a long reduction after a short loop (H100: 1.2–1.8× slower at 2–8 tokens, PERF.md v29).
// The int32 sums stay exact (|Σ| ≤ 127²·K < 2³¹ for K < 133 000) and are reduced as integers; the outlier
// columns (zero in xq) come back in f32 from the values as multiplied, spread over the lanes, reduced beside.
// GLU = 1: w is the gate and w3 the up matrix (both [n, K]), and the output is silu(gate)·up, [T, n] — the
// feed-forward's w2 input without a pass of its own. A thread's slots j < R/2 then hold gate rows and slots
// j ≥ R/2 the up rows of the same n.
// SQ = 1 (the residual stream's products, wo and w2 with accumulate): each workgroup also writes Σ out² of
// every token over its own rows, squares[t, workgroup] — the next RMSNorm's sums, so the rows pass that
// follows (kernels/llm_int8_rows_scan.wgsl, MODE 2) adds a few hundred partials instead of every workgroup
// reading all T rows of K floats again.
// Threads: LANES lanes share a row (lane l takes 16-byte chunks l, l + LANES, …; U chunks of each row in
// flight), G = 256/(SPLIT·LANES) row groups, R slots a thread (row first + grp + j·G; with GLU, j mod R/2).
// SPLIT = 2: the workgroup's two halves stream the same rows, half h for tokens h·TH … h·TH + TH − 1
// (TH ≥ T − TH): half the sums a thread, the weights read twice (the second time mostly from L1/L2); or, with
// T up to 16, two row groups quantized apart (each its own scales and outlier columns) in one stream.
//
// Bindings: 1 xq [T, K/4] u32, 2 the same buffer as vec4<u32>, 3 xs [T] f32, 4 w [n, K/4] u32 (i8x4),
//           5 the same as vec4<u32>, 6 s [n] f32 (SCB/127), 7 out [T, n] f32, 8 outliers [1 + K] u32
//           (count, then columns), 9 xo [T, K] f32, 10 w3 [n, K/4] u32, 11 the same as vec4<u32>,
//           12 s3 [n] f32 (w, s again without GLU), 13 squares [T, sq_stride] f32 (SQ; any writable
//           buffer otherwise).
// Params:   n, k4 = K/4, k16 = ceil(K/16), groups_per_row, accumulate (not with GLU), sq_stride (≥ the
//           workgroups that hold rows, ceil(n / rows a workgroup)); with SPLIT = 2, where the second half's
//           scales start in xs (xs_half; TH when one pass quantized every row), its outlier list in outliers
//           (outliers_half; 0: one list for both) and its int8 rows in xq (q_half words, a multiple of 4;
//           TH·k4 for rows one after the other), its rows of xo (xo_half rows) and of squares (sq_half
//           rows; both TH for rows one after the other, 8 for two groups' scratch); tt = T, the tokens (1..8;
//           up to 16 with SPLIT 2): a parameter, so that every pair of row groups with a first group of TH
//           rows shares one pipeline.
// Overrides: SPLIT ∈ {1, 2} (2 from T = 2), TH (tokens of the first half: T without SPLIT, else ≤ 8 and
//           ≥ T − TH), R ∈ {1, 2, 4} (2 or 4 with GLU), LANES ∈ {4, 8, 16, 32}, U ∈ {1, 2, 4},
//           VEC = 1 when K % 16 == 0 (rows are whole 16-byte chunks; else four word loads a chunk), GLU, SQ,
//           PHASES (1, 2, 4, 8): K streamed in that many parts, each part's outlier columns right after it,
//           NR ∈ {2, 4, 8}: tokens of a half the epilogue reduces a round (8 with R ≤ 2; with SQ, at most
//           2·WG outputs a round).
// Grid:     ceil(n / rows a workgroup) workgroups of 256 (R·G rows, R/2·G with GLU), folded into 2-D.
// Features: packed_4x8_integer_dot_product (core WGSL).
struct Params { n: u32, k4: u32, k16: u32, groups_per_row: u32, accumulate: u32, sq_stride: u32,
                 xs_half: u32, outliers_half: u32, q_half: u32, tt: u32, xo_half: u32, sq_half: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> xq4: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> xs: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<u32>;
@group(0) @binding(5) var<storage, read> w4: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> s: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read> outliers: array<u32>;
@group(0) @binding(9) var<storage, read> xo: array<f32>;
@group(0) @binding(10) var<storage, read> w3: array<u32>;
@group(0) @binding(11) var<storage, read> w3v: array<vec4<u32>>;
@group(0) @binding(12) var<storage, read> s3: array<f32>;
@group(0) @binding(13) var<storage, read_write> squares: array<f32>;

override SPLIT: u32 = 1u;
override TH: u32 = 1u;
override R: u32 = 4u;
override LANES: u32 = 8u;
override U: u32 = 2u;
override VEC: u32 = 1u;
override GLU: u32 = 0u;
override SQ: u32 = 0u;
override PHASES: u32 = 1u;
// Tokens of a half a reduction round: 2 (red and redf side by side, each lane's integer sums exact to the
// end), or 4 or 8 (each lane's sums times its token's scale in f32 first, one value a slot, so both arrays
// hold twice the tokens; 8 when a token has at most 2 slots). Every workgroup runs in the one wave, so each
// round's barriers add to the dispatch's tail: the fewest rounds (src/ops/matvec_dp4a.ts dp4aTokensPerRound).
override NR: u32 = 2u;
const WG = 256u;

// NR = 2: red[(tr·4 + j)·256 + li], two tokens a round, four slots (NR ≥ 4: put_f's f32 rows in both).
var<workgroup> red: array<i32, 2048>; // integer all the way: the sum stays exact
var<workgroup> redf: array<f32, 2048>; // the outlier columns' f32 sums, same layout
// SQ: this thread's Σ out² of the outputs it wrote, by its output slot (o = li, li + 256) and pair of its
// half's tokens (component k).
var<private> sq_first: vec4<f32>;
var<private> sq_second: vec4<f32>;
// The row of xo where this thread's half's tokens start (0 without SPLIT). Where the second half has fewer
// tokens than TH, its last sums come from reads past its rows (bounded by WebGPU, garbage) and are never
// written.
var<private> vb: u32;
// Where this thread's half's outlier list starts in outliers, and its int8 rows in xq (words).
var<private> ob: u32;
var<private> qb: u32;

struct Acc { t0: vec4<i32>, t1: vec4<i32>, t2: vec4<i32>, t3: vec4<i32>,
             t4: vec4<i32>, t5: vec4<i32>, t6: vec4<i32>, t7: vec4<i32> }

// The four chunks of a thread's slots.
struct Chunks { a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, d: vec4<u32> }

// Whether slot j reads the up matrix (GLU).
fn up(j: u32) -> bool {
  return GLU == 1u && 2u * j >= R;
}

fn word(j: u32, at: u32) -> u32 {
  if (up(j)) { return w3[at]; }
  return w[at];
}

// Chunk c (words 4c … 4c + 3) of the row starting at word `row` of slot j's matrix; 0 past the row.
fn chunk(j: u32, row: u32, c: u32) -> vec4<u32> {
  if (c >= p.k16) { return vec4<u32>(); }
  if (VEC == 1u) {
    let at = row / 4u + c;
    if (up(j)) { return w3v[at]; }
    return w4[at];
  }
  let q = 4u * c;
  var v = vec4<u32>(word(j, row + q), 0u, 0u, 0u);
  if (q + 1u < p.k4) { v.y = word(j, row + q + 1u); }
  if (q + 2u < p.k4) { v.z = word(j, row + q + 2u); }
  if (q + 3u < p.k4) { v.w = word(j, row + q + 3u); }
  return v;
}

fn chunks(rows: vec4<u32>, c: u32) -> Chunks {
  var r = Chunks(chunk(0u, rows.x, c), vec4<u32>(), vec4<u32>(), vec4<u32>());
  if (R > 1u) { r.b = chunk(1u, rows.y, c); }
  if (R > 2u) {
    r.c = chunk(2u, rows.z, c);
    r.d = chunk(3u, rows.w, c);
  }
  return r;
}

// Chunk c of token th of this thread's half.
fn xchunk(th: u32, c: u32) -> vec4<u32> {
  if (c >= p.k16) { return vec4<u32>(); }
  if (VEC == 1u) { return xq4[qb / 4u + th * p.k16 + c]; }
  let q = qb + th * p.k4 + 4u * c;
  var v = vec4<u32>(xq[q], 0u, 0u, 0u);
  if (4u * c + 1u < p.k4) { v.y = xq[q + 1u]; }
  if (4u * c + 2u < p.k4) { v.z = xq[q + 2u]; }
  if (4u * c + 3u < p.k4) { v.w = xq[q + 3u]; }
  return v;
}

fn d4(a: vec4<u32>, b: vec4<u32>) -> i32 {
  return dot4I8Packed(a.x, b.x) + dot4I8Packed(a.y, b.y) + dot4I8Packed(a.z, b.z) + dot4I8Packed(a.w, b.w);
}

fn tok(t: u32, c: u32, k: Chunks) -> vec4<i32> {
  let a = xchunk(t, c);
  var r = vec4<i32>(d4(a, k.a), 0, 0, 0);
  if (R > 1u) { r.y = d4(a, k.b); }
  if (R > 2u) {
    r.z = d4(a, k.c);
    r.w = d4(a, k.d);
  }
  return r;
}

fn chunk_math(acc: ptr<function, Acc>, c: u32, k: Chunks) {
  (*acc).t0 += tok(0u, c, k);
  if (TH > 1u) { (*acc).t1 += tok(1u, c, k); }
  if (TH > 2u) { (*acc).t2 += tok(2u, c, k); }
  if (TH > 3u) { (*acc).t3 += tok(3u, c, k); }
  if (TH > 4u) { (*acc).t4 += tok(4u, c, k); }
  if (TH > 5u) { (*acc).t5 += tok(5u, c, k); }
  if (TH > 6u) { (*acc).t6 += tok(6u, c, k); }
  if (TH > 7u) { (*acc).t7 += tok(7u, c, k); }
}

fn byte_of(j: u32, row: u32, c: u32) -> f32 {
  return f32(i32(word(j, row + c / 4u) << (24u - 8u * (c % 4u))) >> 24u);
}

struct Accf { t0: vec4<f32>, t1: vec4<f32>, t2: vec4<f32>, t3: vec4<f32>,
              t4: vec4<f32>, t5: vec4<f32>, t6: vec4<f32>, t7: vec4<f32> }

fn add_tok(a: vec4<f32>, x: f32, wb: vec4<f32>) -> vec4<f32> {
  var r = a;
  r.x += x * wb.x;
  if (R > 1u) { r.y += x * wb.y; }
  if (R > 2u) {
    r.z += x * wb.z;
    r.w += x * wb.w;
  }
  return r;
}

// The outlier columns' f32 products for every token, spread over the lanes (lane l takes outlier l,
// l + LANES, …) and reduced beside the integer sums: the columns in [lo, hi), the part of K the main loop
// has just streamed (one part: every column, after the main loop, so that its registers stay free of the
// sums). Every token at once, so that each column's scattered weight bytes are read once (two tokens a sweep
// read them T/2 times: w2 at 8 rows with 138 outlier columns took 123 µs instead of ~62, H100). Only a
// thread's R slots are added to: the unused components stay constant zeros.
fn outlier_sums(f: Accf, rows: vec4<u32>, lane: u32, lo: u32, hi: u32) -> Accf {
  var r = f;
  let count = outliers[ob];
  let K = 4u * p.k4;
  for (var i = lane; i < count; i += LANES) {
    let c = outliers[ob + 1u + i];
    if (PHASES > 1u) {
      if (c >= hi) { break; } // a lane's columns ascend
      if (c < lo) { continue; }
    }
    var wb = vec4<f32>(byte_of(0u, rows.x, c), 0.0, 0.0, 0.0);
    if (R > 1u) { wb.y = byte_of(1u, rows.y, c); }
    if (R > 2u) {
      wb.z = byte_of(2u, rows.z, c);
      wb.w = byte_of(3u, rows.w, c);
    }
    let at = vb * K + c;
    r.t0 = add_tok(r.t0, xo[at], wb);
    if (TH > 1u) { r.t1 = add_tok(r.t1, xo[at + K], wb); }
    if (TH > 2u) { r.t2 = add_tok(r.t2, xo[at + 2u * K], wb); }
    if (TH > 3u) { r.t3 = add_tok(r.t3, xo[at + 3u * K], wb); }
    if (TH > 4u) { r.t4 = add_tok(r.t4, xo[at + 4u * K], wb); }
    if (TH > 5u) { r.t5 = add_tok(r.t5, xo[at + 5u * K], wb); }
    if (TH > 6u) { r.t6 = add_tok(r.t6, xo[at + 6u * K], wb); }
    if (TH > 7u) { r.t7 = add_tok(r.t7, xo[at + 7u * K], wb); }
  }
  return r;
}

fn scale(j: u32, row: u32) -> f32 {
  if (up(j)) { return s3[row]; }
  return s[row];
}

fn silu(a: f32) -> f32 {
  return a / (1.0 + exp(-a));
}

// Slot j's sum for the pair's token tr of half h, over the LANES lanes of row group g, scaled (th: its token
// within the half).
fn result(tr: u32, j: u32, h: u32, g: u32, th: u32, row: u32) -> f32 {
  let at = (tr * 4u + j) * WG + h * (WG / SPLIT) + g * LANES;
  var si = 0;
  var sf = 0.0;
  for (var l = 0u; l < LANES; l++) {
    si += red[at + l];
    sf += redf[at + l];
  }
  return scale(j, row) * (xs[h * p.xs_half + th] * f32(si) + sf);
}

// What output o of a round is: (half, token of the round, row group, distinct row),
// o = ((h·NR + tr)·G + g)·per + j.
struct Output { h: u32, tr: u32, g: u32, j: u32 }

fn output_of(o: u32) -> Output {
  let G = WG / (SPLIT * LANES);
  let per = select(R, R / 2u, GLU == 1u);
  return Output(o / (NR * per * G), (o / (per * G)) % NR, (o / per) % G, o % per);
}

// NR = 2: pair `pair` of every half (tokens 2·pair and + 1 of the half; sums v0, f0 and v1, f1 of this
// thread): every lane's sums through workgroup memory, then one thread per output reduces, scales and writes
// it.
fn emit(pair: u32, v0: vec4<i32>, f0: vec4<f32>, v1: vec4<i32>, f1: vec4<f32>, first: u32, li: u32) {
  let G = WG / (SPLIT * LANES);
  let per = select(R, R / 2u, GLU == 1u);
  workgroupBarrier();
  for (var j = 0u; j < 4u; j++) {
    red[j * WG + li] = v0[j];
    redf[j * WG + li] = f0[j];
    red[(4u + j) * WG + li] = v1[j];
    redf[(4u + j) * WG + li] = f1[j];
  }
  workgroupBarrier();
  let outputs = 2u * SPLIT * G * per;
  for (var o = li; o < outputs; o += WG) {
    let e = output_of(o);
    let th = 2u * pair + e.tr; // the token within the half
    let t = e.h * TH + th;
    let row = first + e.g + e.j * G;
    if (th < TH && t < p.tt && row < p.n) {
      var v = result(e.tr, e.j, e.h, e.g, th, row);
      if (GLU == 1u) {
        v = silu(v) * result(e.tr, e.j + per, e.h, e.g, th, row);
      } else if (p.accumulate != 0u) {
        v += out[t * p.n + row];
      }
      out[t * p.n + row] = v;
      if (SQ == 1u) {
        let k = vec4<f32>(vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(pair)) * (v * v);
        if (o == li) {
          sq_first += k;
        } else {
          sq_second += k;
        }
      }
    }
  }
}

// NR ≥ 4: the lane values of a round as 16 rows of WG floats, rows 0–7 in red (as bits), 8–15 in redf; row
// q = tr·RS + j holds slot j of the round's token tr (RS slots a token: 4 at NR 4, R at NR 8).
fn put_f(q: u32, li: u32, v: f32) {
  if (q < 8u) {
    red[q * WG + li] = bitcast<i32>(v);
  } else {
    redf[(q - 8u) * WG + li] = v;
  }
}

// Row q's sum over the LANES lanes of row group g of half h.
fn lanes_f(q: u32, h: u32, g: u32) -> f32 {
  let at = h * (WG / SPLIT) + g * LANES;
  var sf = 0.0;
  if (q < 8u) {
    for (var l = 0u; l < LANES; l++) { sf += bitcast<f32>(red[q * WG + at + l]); }
  } else {
    for (var l = 0u; l < LANES; l++) { sf += redf[(q - 8u) * WG + at + l]; }
  }
  return sf;
}

// A lane's sums of one token as f32: its integer sums times the token's scale, plus its outlier sums.
fn lane_f(v: vec4<i32>, f: vec4<f32>, x: f32) -> vec4<f32> {
  return x * vec4<f32>(v) + f;
}

// NR ≥ 4, after the lane values are in place: one thread per output (token tr of the round, from the first
// token th0 of the half, RS rows a token) reduces, scales and writes it.
fn finish_f(round: u32, th0: u32, RS: u32, first: u32, li: u32) {
  let G = WG / (SPLIT * LANES);
  let per = select(R, R / 2u, GLU == 1u);
  let outputs = NR * SPLIT * G * per;
  for (var o = li; o < outputs; o += WG) {
    let e = output_of(o);
    let th = th0 + e.tr;
    let t = e.h * TH + th;
    let row = first + e.g + e.j * G;
    if (th < TH && t < p.tt && row < p.n) {
      var v = scale(e.j, row) * lanes_f(e.tr * RS + e.j, e.h, e.g);
      if (GLU == 1u) {
        v = silu(v) * (scale(e.j + per, row) * lanes_f(e.tr * RS + e.j + per, e.h, e.g));
      } else if (p.accumulate != 0u) {
        v += out[t * p.n + row];
      }
      out[t * p.n + row] = v;
      if (SQ == 1u) {
        let k = vec4<f32>(vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(round)) * (v * v);
        if (o == li) {
          sq_first += k;
        } else {
          sq_second += k;
        }
      }
    }
  }
}

// This thread's token scales from token th0 of its half on (past its half's tokens: never written).
fn token_scales(th0: u32, li: u32) -> vec4<f32> {
  let xb = (li / (WG / SPLIT)) * p.xs_half + th0;
  return vec4<f32>(xs[xb], xs[xb + 1u], xs[xb + 2u], xs[xb + 3u]);
}

// NR = 8 (R ≤ 2: every token's slots fit at once): all tokens of every half in one round.
fn emit8(a: Acc, f: Accf, first: u32, li: u32) {
  let lo = token_scales(0u, li);
  let hi = token_scales(4u, li);
  workgroupBarrier();
  let t0 = lane_f(a.t0, f.t0, lo.x);
  let t1 = lane_f(a.t1, f.t1, lo.y);
  let t2 = lane_f(a.t2, f.t2, lo.z);
  let t3 = lane_f(a.t3, f.t3, lo.w);
  let t4 = lane_f(a.t4, f.t4, hi.x);
  let t5 = lane_f(a.t5, f.t5, hi.y);
  let t6 = lane_f(a.t6, f.t6, hi.z);
  let t7 = lane_f(a.t7, f.t7, hi.w);
  for (var j = 0u; j < R; j++) {
    put_f(j, li, t0[j]);
    put_f(R + j, li, t1[j]);
    put_f(2u * R + j, li, t2[j]);
    put_f(3u * R + j, li, t3[j]);
    put_f(4u * R + j, li, t4[j]);
    put_f(5u * R + j, li, t5[j]);
    put_f(6u * R + j, li, t6[j]);
    put_f(7u * R + j, li, t7[j]);
  }
  workgroupBarrier();
  finish_f(0u, 0u, R, first, li);
}

// NR = 4: round `quad` of every half (tokens 4·quad … 4·quad + 3 of the half; integer sums v·, outlier
// sums f· of this thread): each lane's sums times its token's scale, through workgroup memory, then one
// thread per output reduces, scales and writes it.
fn emit4(quad: u32, v0: vec4<i32>, f0: vec4<f32>, v1: vec4<i32>, f1: vec4<f32>, v2: vec4<i32>, f2: vec4<f32>,
         v3: vec4<i32>, f3: vec4<f32>, first: u32, li: u32) {
  let xt = token_scales(4u * quad, li);
  workgroupBarrier();
  let t0 = lane_f(v0, f0, xt.x);
  let t1 = lane_f(v1, f1, xt.y);
  let t2 = lane_f(v2, f2, xt.z);
  let t3 = lane_f(v3, f3, xt.w);
  for (var j = 0u; j < 4u; j++) {
    put_f(j, li, t0[j]);
    put_f(4u + j, li, t1[j]);
    put_f(8u + j, li, t2[j]);
    put_f(12u + j, li, t3[j]);
  }
  workgroupBarrier();
  finish_f(quad, 4u * quad, 4u, first, li);
}

// SQ: every token's Σ out² over this workgroup's rows, through redf as [token][row of the workgroup], then
// a tree of 32 a token.
fn write_squares(wid: u32, li: u32) {
  let G = WG / (SPLIT * LANES);
  let per = select(R, R / 2u, GLU == 1u);
  let rows = per * G; // distinct rows of the workgroup (≤ 256)
  // redf holds 8 tokens' rows: every token in one round when they fit, else a half a round.
  let one = SPLIT * TH <= 8u;
  let rounds = select(SPLIT, 1u, one);
  for (var round = 0u; round < rounds; round++) {
    workgroupBarrier(); // the last pair's sums (or the previous round's) are read
    for (var o = li; o < NR * SPLIT * rows; o += WG) {
      let e = output_of(o);
      let v = select(sq_second, sq_first, o == li);
      for (var k = 0u; k < 4u; k++) {
        let th = NR * k + e.tr;
        let at = select(th, e.h * TH + th, one); // the token's row of redf
        if (th < TH && (one || e.h == round)) { redf[at * WG + e.g + e.j * G] = v[k]; }
      }
    }
    workgroupBarrier();
    let i = li / 32u; // row of redf
    let h = li % 32u;
    var a = 0.0;
    for (var e = h; e < rows; e += 32u) { a += redf[i * WG + e]; }
    redf[i * WG + h] = a; // entry h: only this thread read it
    workgroupBarrier();
    for (var st = 16u; st > 0u; st >>= 1u) {
      if (h < st) { redf[i * WG + h] += redf[i * WG + h + st]; }
      workgroupBarrier();
    }
    // Token t of the step is token th of half hf, whose rows start at row hf·sq_half of squares.
    let t = select(round * TH + i, i, one);
    let hf = select(round, i / TH, one);
    let th = select(i, i % TH, one);
    if (h == 0u && (one || i < TH) && t < p.tt && wid < (p.n + rows - 1u) / rows) {
      squares[(hf * p.sq_half + th) * p.sq_stride + wid] = redf[i * WG];
    }
  }
}

// The integer sums over chunks c_lo … c_hi − 1 of the thread's rows (lane l: chunks c_lo + l, + LANES, …;
// U of them in flight).
fn stream(acc: ptr<function, Acc>, rows: vec4<u32>, lane: u32, c_lo: u32, c_hi: u32) {
  for (var c = c_lo + lane; c < c_hi; c += U * LANES) {
    let k0 = chunks(rows, c);
    var k1 = Chunks();
    var k2 = Chunks();
    var k3 = Chunks();
    if (U > 1u) { k1 = chunks(rows, c + LANES); }
    if (U > 2u) {
      k2 = chunks(rows, c + 2u * LANES);
      k3 = chunks(rows, c + 3u * LANES);
    }
    chunk_math(acc, c, k0);
    if (U > 1u) { chunk_math(acc, c + LANES, k1); }
    if (U > 2u) {
      chunk_math(acc, c + 2u * LANES, k2);
      chunk_math(acc, c + 3u * LANES, k3);
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let G = WG / (SPLIT * LANES);
  let half = li / (WG / SPLIT);
  let lane = li % LANES;
  let grp = (li % (WG / SPLIT)) / LANES;
  vb = half * p.xo_half;
  ob = half * p.outliers_half;
  qb = half * p.q_half;
  let per = select(R, R / 2u, GLU == 1u); // distinct rows a thread
  let wid = wg.y * p.groups_per_row + wg.x;
  let first = wid * (per * G);
  let slot_rows = vec4<u32>(0u, 1u, 2u, 3u) % vec4<u32>(per);
  let rows = min(vec4<u32>(first + grp) + slot_rows * G, vec4<u32>(p.n - 1u)) * p.k4;
  var acc = Acc();
  var fo: Accf;
  // One part keeps this form of its own: the same sums carried through the parts' loop, even a loop of one
  // pass, cost batch 8 541 → 489 tokens/s on an H100 (PERF.md v50).
  if (PHASES == 1u) {
    stream(&acc, rows, lane, 0u, p.k16);
    fo = outlier_sums(Accf(), rows, lane, 0u, 16u * p.k16);
  } else {
    // K in PHASES parts, each part's outlier columns right after the main loop streamed it, while its
    // bytes are likely still in L2; whole rounds of U·LANES chunks a part, so that a round never reaches
    // into the next part.
    let round = U * LANES;
    let part = (p.k16 + PHASES * round - 1u) / (PHASES * round) * round;
    fo = Accf();
    for (var ph = 0u; ph < PHASES; ph++) {
      let c_lo = ph * part;
      let c_hi = min(c_lo + part, p.k16);
      stream(&acc, rows, lane, c_lo, c_hi);
      fo = outlier_sums(fo, rows, lane, 16u * c_lo, 16u * c_hi);
    }
  }
  // Tokens in pairs (the reduction's workgroup memory holds two): each pair's sums by name, no token index
  // into the accumulators. Past T the second token's sums are zeros and its outputs are not written.
  if (NR == 8u) {
    emit8(acc, fo, first, li);
  } else if (NR == 4u) {
    emit4(0u, acc.t0, fo.t0, acc.t1, fo.t1, acc.t2, fo.t2, acc.t3, fo.t3, first, li);
    if (TH > 4u) { emit4(1u, acc.t4, fo.t4, acc.t5, fo.t5, acc.t6, fo.t6, acc.t7, fo.t7, first, li); }
  } else {
    emit(0u, acc.t0, fo.t0, acc.t1, fo.t1, first, li);
    if (TH > 2u) { emit(1u, acc.t2, fo.t2, acc.t3, fo.t3, first, li); }
    if (TH > 4u) { emit(2u, acc.t4, fo.t4, acc.t5, fo.t5, first, li); }
    if (TH > 6u) { emit(3u, acc.t6, fo.t6, acc.t7, fo.t7, first, li); }
  }
  if (SQ == 1u) { write_squares(wid, li); }
}
