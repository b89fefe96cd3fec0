// Not a kernel: the core of kernels/matvec_i8.wgsl and kernels/matvec_i8_vec.wgsl, pasted where they say
// `// #include matvec_i8_core` (after `// #include int8`; src/gpu/kernel_source.ts). Everything but the loop
// over the weights, which each of the two defines as `weight_loop(lane, oa, ob) -> Acc`: the two loops in one
// module made every pipeline of either compile ~1.7× slower on llvmpipe (the dead one is inlined before it
// is removed), ~15 s more for tests/kernels/matvec_i8_test.ts alone. The header of matvec_i8.wgsl describes
// the bindings, params, overrides and grid.
struct Params {
  n: u32, k4: u32, eps: f32, has_bias: u32, groups_per_row: u32, accumulate: u32,
  total_groups: u32, grid_groups: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> s1: array<f32>;
@group(0) @binding(6) var<storage, read> s3: array<f32>;
@group(0) @binding(7) var<storage, read> bias: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;
// Bindings 3 and 5 (w1, w3) are the including kernel's: as u32 words or as 16-byte chunks.

override MODE: u32 = 0u;
override TT: u32 = 1u;
override R: u32 = 1u;
override LANES: u32 = 32u;
override U: u32 = 4u;
override I2F: bool = false;
override BIASED: bool = false;
override PROBE: u32 = 0u;
override DOT_ADD: bool = false;
const WG = 256u;
// red[(group·VALS + value)·(LANES + 1) + lane], at least WG floats (the norm's sums). RED_LEN sets the
// workgroup memory, which decides how many workgroups share a multiprocessor (src/ops/matvec_i8.ts). At the
// full 4608 a round holds 2 tokens × 8 slots (4 lo rows, then 4 hi rows) whatever the tiling:
// G·16·(LANES+1) ≤ 32·16·9 = 4608. A shorter array packs a round's tokens by the rows a thread has (SLOTS;
// one token at TT = 1). The full array keeps the full layout: the packed one cost the one-token step 0.035
// ms (PERF.md v95).
override RED_LEN: u32 = 4608u;
override PACKED: bool = RED_LEN < 4608u;
override SLOTS: u32 = select(8u, select(min(R, 4u), 8u, MODE == 2u || R > 4u), PACKED);
override VALS: u32 = select(16u, min(TT, 2u) * SLOTS, PACKED);
var<workgroup> red: array<f32, RED_LEN>;
var<workgroup> invs: array<f32, 8>;
// LANES > 32: per-thread sums of 16 lanes, [slot][LANES/16] (G·VALS slots · LANES/16 ≤ 256).
var<workgroup> red2: array<f32, 256>;

// The word's 4 int8 as f32: i8x4_halves, or (I2F: benchmarks, and the tests' exact reference) unpack4xI8 and
// int → float, or (BIASED) (b + 128)·2⁻²⁴.
fn word_f32(w: u32) -> vec4<f32> {
  if (I2F) { return vec4<f32>(unpack4xI8(w)); }
  if (BIASED) { return i8x4_biased(w); }
  return i8x4_halves(w);
}

// A thread's weight rows: "lo" = output rows j = 0..min(R,4)−1; "hi" = rows 4..7 (R = 8) or, in MODE 2,
// the W3 rows of the lo rows.
fn nlo() -> u32 {
  return min(R, 4u);
}
fn nhi() -> u32 {
  if (MODE == 2u) { return R; }
  return select(0u, R - 4u, R > 4u);
}

struct Words { a: vec4<u32>, b: vec4<u32> }
struct Rows { a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32> }
// Per-token sums: l<t> over the lo rows (one component each), h<t> over the hi rows.
struct Acc {
  l0: vec4<f32>, l1: vec4<f32>, l2: vec4<f32>, l3: vec4<f32>,
  l4: vec4<f32>, l5: vec4<f32>, l6: vec4<f32>, l7: vec4<f32>,
  h0: vec4<f32>, h1: vec4<f32>, h2: vec4<f32>, h3: vec4<f32>,
  h4: vec4<f32>, h5: vec4<f32>, h6: vec4<f32>, h7: vec4<f32>,
}

// MODE ≥ 1: the norm weight g multiplies whichever side has fewer vectors per word, each token's x (TT
// products) or each weight row (nlo + nhi): at one token 4 multiplies a word instead of 16 or 32.
fn g_on_x() -> bool {
  return MODE > 0u && TT < nlo() + nhi();
}

// Token t's x for word q (times g when g_on_x).
fn x_at(t: u32, k4: u32, q: u32, gq: vec4<f32>) -> vec4<f32> {
  let v = x[t * k4 + q];
  if (g_on_x()) { return v * gq; }
  return v;
}

// int8 → f32 is exact; in MODE ≥ 1 (unless g_on_x) g is folded into the rows once per word for all tokens.
fn unpack_rows(w: vec4<u32>, gq: vec4<f32>) -> Rows {
  var r = Rows(word_f32(w.x), word_f32(w.y), word_f32(w.z),
               word_f32(w.w));
  if (MODE > 0u && !g_on_x()) {
    r.a *= gq;
    r.b *= gq;
    r.c *= gq;
    r.d *= gq;
  }
  return r;
}

// acc + (v · each of the n rows): four multiply-adds chained into the accumulator, 4 instructions per row
// and word where a dot product and an add take 5 (DOT_ADD, benchmarks only: the form it replaced).
fn fma4(v: vec4<f32>, w: vec4<f32>, a: f32) -> f32 {
  if (DOT_ADD) { return a + dot(v, w); }
  return fma(v.w, w.w, fma(v.z, w.z, fma(v.y, w.y, fma(v.x, w.x, a))));
}

fn dots(v: vec4<f32>, m: Rows, n: u32, acc: vec4<f32>) -> vec4<f32> {
  var r = acc;
  r.x = fma4(v, m.a, r.x);
  if (n > 1u) { r.y = fma4(v, m.b, r.y); }
  if (n > 2u) {
    r.z = fma4(v, m.c, r.z);
    r.w = fma4(v, m.d, r.w);
  }
  return r;
}

fn accumulate(acc: ptr<function, Acc>, q: u32, ws: Words) {
  var gq = vec4<f32>(1.0);
  if (MODE > 0u) { gq = g[q]; }
  let lo = unpack_rows(ws.a, gq);
  let hi = unpack_rows(ws.b, gq);
  var k4 = p.k4;
  if (PROBE == 1u) { k4 = 0u; } // every token reads token 0's x
  let hasHi = nhi() > 0u;
  var v = x_at(0u, k4, q, gq);
  if (PROBE == 2u) {
    // Every token's x is loaded (as many loads as the real math, independent), the math is one token's.
    if (TT > 1u) { v += x_at(1u, k4, q, gq); }
    if (TT > 2u) { v += x_at(2u, k4, q, gq); }
    if (TT > 3u) { v += x_at(3u, k4, q, gq); }
    if (TT > 4u) { v += x_at(4u, k4, q, gq); }
    if (TT > 5u) { v += x_at(5u, k4, q, gq); }
    if (TT > 6u) { v += x_at(6u, k4, q, gq); }
    if (TT > 7u) { v += x_at(7u, k4, q, gq); }
    (*acc).l0 = dots(v, lo, nlo(), (*acc).l0);
    if (hasHi) { (*acc).h0 = dots(v, hi, nhi(), (*acc).h0); }
    return;
  }
  if (BIASED) {
    // One token: the word's chains start from −I8_BIAS·Σx, x as it meets the rows, once for all of them.
    var m = v;
    if (MODE > 0u && !g_on_x()) { m *= gq; }
    let xb = vec4<f32>(i8_bias_of(m));
    (*acc).l0 += xb;
    if (hasHi) { (*acc).h0 += xb; }
  }
  (*acc).l0 = dots(v, lo, nlo(), (*acc).l0);
  if (hasHi) { (*acc).h0 = dots(v, hi, nhi(), (*acc).h0); }
  if (TT > 1u) {
    v = x_at(1u, k4, q, gq);
    (*acc).l1 = dots(v, lo, nlo(), (*acc).l1);
    if (hasHi) { (*acc).h1 = dots(v, hi, nhi(), (*acc).h1); }
  }
  if (TT > 2u) {
    v = x_at(2u, k4, q, gq);
    (*acc).l2 = dots(v, lo, nlo(), (*acc).l2);
    if (hasHi) { (*acc).h2 = dots(v, hi, nhi(), (*acc).h2); }
  }
  if (TT > 3u) {
    v = x_at(3u, k4, q, gq);
    (*acc).l3 = dots(v, lo, nlo(), (*acc).l3);
    if (hasHi) { (*acc).h3 = dots(v, hi, nhi(), (*acc).h3); }
  }
  if (TT > 4u) {
    v = x_at(4u, k4, q, gq);
    (*acc).l4 = dots(v, lo, nlo(), (*acc).l4);
    if (hasHi) { (*acc).h4 = dots(v, hi, nhi(), (*acc).h4); }
  }
  if (TT > 5u) {
    v = x_at(5u, k4, q, gq);
    (*acc).l5 = dots(v, lo, nlo(), (*acc).l5);
    if (hasHi) { (*acc).h5 = dots(v, hi, nhi(), (*acc).h5); }
  }
  if (TT > 6u) {
    v = x_at(6u, k4, q, gq);
    (*acc).l6 = dots(v, lo, nlo(), (*acc).l6);
    if (hasHi) { (*acc).h6 = dots(v, hi, nhi(), (*acc).h6); }
  }
  if (TT > 7u) {
    v = x_at(7u, k4, q, gq);
    (*acc).l7 = dots(v, lo, nlo(), (*acc).l7);
    if (hasHi) { (*acc).h7 = dots(v, hi, nhi(), (*acc).h7); }
  }
}

struct Words2 { lo: vec4<f32>, hi: vec4<f32> }

// Output row for the sums of (row group ug, lo component c) and the epilogue of MODE 0/1.
fn finish(row: u32, t: u32, v: f32) {
  if (row >= p.n) { return; }
  var o = s1[row] * v;
  if (MODE == 1u) { o = invs[t] * s1[row] * v; }
  if (p.has_bias != 0u) { o += bias[row]; }
  if (MODE == 0u && p.accumulate != 0u) { o += out[t * p.n + row]; }
  out[t * p.n + row] = o;
}
// This thread's partial sums for the rows of the workgroup's row block starting at `first`; the loop over the
// weights is the including kernel's `weight_loop` (words in matvec_i8.wgsl, 16-byte chunks in
// matvec_i8_vec.wgsl).
fn accumulate_rows(first: u32, li: u32) -> Acc {
  let G = WG / LANES; // row groups per workgroup
  let lane = li % LANES;
  let grp = li / LANES;
  let base = first + grp; // output row j of this thread: base + j·G
  // Rows past N (last workgroup, folded-grid overhang) re-read row N−1 and write nothing.
  let last = p.n - 1u;
  let ja = vec4<u32>(base, base + G, base + 2u * G, base + 3u * G);
  var jb = ja;
  if (MODE < 2u) { jb = ja + vec4<u32>(4u * G); }
  let oa = min(ja, vec4<u32>(last)) * p.k4;
  let ob = min(jb, vec4<u32>(last)) * p.k4;
  var a = weight_loop(lane, oa, ob);
  if (BIASED) {
    a.l0 *= I8_UNSCALE;
    a.h0 *= I8_UNSCALE;
  }
  return a;
}

// inv_t of every token into `invs` (MODE ≥ 1; the caller orders it after its last use of red). All 256
// threads share the sums, PER = 256 / TT rounded down to a power of two per token, then a tree in red: the
// serial part is a few loads a thread, not K/128 (one warp per token took ~4 µs a dispatch at K = 6144).
fn norms(li: u32) {
  if (MODE > 0u) {
    let per = WG >> (32u - countLeadingZeros(TT - 1u));
    let t = li / per;
    let j = li % per;
    var s0 = 0.0;
    var s1 = 0.0;
    if (t < TT) {
      let base = t * p.k4;
      var i = j;
      for (; i + per < p.k4; i += 2u * per) {
        let a = x[base + i];
        let b = x[base + i + per];
        s0 += dot(a, a);
        s1 += dot(b, b);
      }
      if (i < p.k4) {
        let a = x[base + i];
        s0 += dot(a, a);
      }
    }
    red[li] = s0 + s1;
    workgroupBarrier();
    for (var s = per / 2u; s > 0u; s >>= 1u) {
      if (j < s) { red[li] += red[li + s]; }
      workgroupBarrier();
    }
    if (li < TT) { invs[li] = inverseSqrt(red[li * per] / f32(4u * p.k4) + p.eps); }
  }
}

// Reduces the LANES partial sums of every row and token and writes the outputs of the row block: tokens in
// pairs (the reduction's workgroup memory holds two), each pair's sums by name (sa, sb), so no token index
// selects among the accumulators (a switch on it over the whole Acc cost ~4 % of the LLM.int8 twin of this
// kernel's time at 8 rows, PERF.md v32). Past TT a pair's second sums are zeros and not written.
fn write_rows(first: u32, li: u32, acc: Acc) {
  write_pair(0u, Words2(acc.l0, acc.h0), Words2(acc.l1, acc.h1), first, li);
  if (TT > 2u) { write_pair(2u, Words2(acc.l2, acc.h2), Words2(acc.l3, acc.h3), first, li); }
  if (TT > 4u) { write_pair(4u, Words2(acc.l4, acc.h4), Words2(acc.l5, acc.h5), first, li); }
  if (TT > 6u) { write_pair(6u, Words2(acc.l6, acc.h6), Words2(acc.l7, acc.h7), first, li); }
}

fn write_pair(t0: u32, sa: Words2, sb: Words2, first: u32, li: u32) {
  let G = WG / LANES;
  let lane = li % LANES;
  let grp = li / LANES;
  let stride = LANES + 1u;
  workgroupBarrier(); // the previous round's (or the norm's) reads are done
  for (var tr = 0u; tr < 2u; tr++) {
    if (t0 + tr < TT) {
      var s = sa;
      if (tr == 1u) { s = sb; }
      let o = (grp * VALS + tr * SLOTS) * stride + lane;
      red[o] = s.lo.x;
      if (nlo() > 1u) { red[o + stride] = s.lo.y; }
      if (nlo() > 2u) {
        red[o + 2u * stride] = s.lo.z;
        red[o + 3u * stride] = s.lo.w;
      }
      if (nhi() > 0u) { red[o + 4u * stride] = s.hi.x; }
      if (nhi() > 1u) { red[o + 5u * stride] = s.hi.y; }
      if (nhi() > 2u) {
        red[o + 6u * stride] = s.hi.z;
        red[o + 7u * stride] = s.hi.w;
      }
    }
  }
  workgroupBarrier();
  if (LANES > 32u) {
    // Wide rows: first every thread sums 16 lanes of one slot (P = LANES/16 threads per slot), so the
    // serial part below adds P values instead of LANES.
    let P = LANES / 16u;
    if (!PACKED || li / P < G * VALS) {
      let o = (li / P) * stride + (li % P) * 16u;
      var a = 0.0;
      for (var l = 0u; l < 16u; l++) { a += red[o + l]; }
      red2[li] = a;
    }
    workgroupBarrier();
  }
  // One thread per (row group ug, token t0 + tr, lo component c): 8·G ≤ 256 threads.
  let ug = li / 8u;
  let tr = (li / 4u) % 2u;
  let c = li % 4u;
  let t = t0 + tr;
  if (ug < G && t < TT && c < nlo()) {
    let slot = ug * VALS + tr * SLOTS + c;
    var a = 0.0;
    var b = 0.0;
    if (LANES > 32u) {
      let P = LANES / 16u;
      for (var l = 0u; l < P; l++) { a += red2[slot * P + l]; }
      if (nhi() > c) {
        for (var l = 0u; l < P; l++) { b += red2[(slot + 4u) * P + l]; }
      }
    } else {
      let o = slot * stride;
      for (var l = 0u; l < LANES; l++) { a += red[o + l]; }
      if (nhi() > c) {
        for (var l = 0u; l < LANES; l++) { b += red[o + 4u * stride + l]; }
      }
    }
    let row = first + ug + c * G;
    if (MODE == 2u) {
      if (row < p.n) {
        let gate = invs[t] * s1[row] * a;
        let up = invs[t] * s3[row] * b;
        // exp(−gate) overflowing to +inf for gate ≪ 0 gives gate / inf = −0, the right limit.
        out[t * p.n + row] = gate / (1.0 + exp(-gate)) * up;
      }
    } else {
      finish(row, t, a);
      if (nhi() > c) { finish(row + 4u * G, t, b); }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let rows_per_group = (WG / LANES) * R;
  let id = wg.y * p.groups_per_row + wg.x;
  if (p.grid_groups == 0u) {
    // One row block per workgroup; the norm's x reads come after the weight loop, off its critical path.
    let acc = accumulate_rows(id * rows_per_group, li);
    norms(li);
    write_rows(id * rows_per_group, li, acc);
    return;
  }
  // Persistent: grid_groups workgroups (as many as run at once) walk the row blocks, so the last wave is
  // not a partly filled one and every workgroup finishes at about the same time.
  for (var blk = id; blk < p.total_groups; blk += p.grid_groups) {
    let acc = accumulate_rows(blk * rows_per_group, li);
    if (blk == id) { norms(li); }
    write_rows(blk * rows_per_group, li, acc);
    workgroupBarrier(); // red is free again
  }
}
