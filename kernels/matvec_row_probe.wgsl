// Experiment (scripts/bench_stream_chain.ts, PERF.md v52): the one-row int8 matrix-vector product of
// kernels/linear_matvec.wgsl at T = 1 (out[n] (+)= scale[n] · Σ_k x[k]·W[n, k]), with the knobs that ask where
// its time goes against a plain read of the same bytes (kernels/stream_read_probe.wgsl):
//   UW     words a lane loads before their math, a round (linear_matvec: 4);
//   LANES  lanes a row (32, 64, 128; a workgroup holds 256 / LANES rows);
//   ACC    independent accumulators (word j of a round goes to ACC j % ACC), to shorten the FMA chain;
//   PIPE   the next round's words loaded before this round's math (UW 4 or 8);
//   MATH   0 the product; timing only (wrong values): 1 x a constant (no x loads), 2 the word's bits as
//          floats (no int8 widening), 3 the words XOR-folded (the weight loads alone);
//   R2     two rows a lane (n and n + 256 / LANES), UW 4 each, one x load for both (half the x traffic);
//   BLOCKED the weights in blocks of a round (UW·LANES words of a row), block-major: block b of row n at
//          words (b·N + n)·UW·LANES, so the rows' rounds that run at once read one contiguous stretch, as a
//          plain read does (K/4 a multiple of UW·LANES; not with PIPE or R2).
// Bindings: 1 x [K] f32 as vec4 (K % 4 == 0), 2 w [N, K] i8x4 (BLOCKED: as above), 3 scale [N] f32,
//   4 out [N] f32.
// Params: n = N, kw = K/4, groups_per_row. Overrides: the knobs above, ACCUM (out += instead of =).
// Grid: ceil(N / rows a workgroup) workgroups of 256 (R2: 2 · 256 / LANES rows), folded into 2-D as
//   (wg.y · groups_per_row + wg.x). Features: none.
struct Params { n: u32, kw: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// #include int8

override UW: u32 = 4u;
override LANES: u32 = 32u;
override ACC: u32 = 1u;
override PIPE: bool = false;
override MATH: u32 = 0u;
override R2: bool = false;
override ACCUM: bool = false;
override BLOCKED: bool = false;
const WGS = 256u;

var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>; // R2: the second row's sums

fn xq(q: u32) -> vec4<f32> {
  if (MATH == 1u) { return vec4<f32>(1.0, 0.5, 0.25, 0.125); }
  return x[q];
}

fn widen(word: u32) -> vec4<f32> {
  if (MATH == 2u) { return vec4<f32>(bitcast<f32>(word & 0x3FFFFFFFu)); }
  return i8x4(word);
}

// acc + x[word q] · W[word]: four chained FMAs (or, MATH 3, the word folded in).
fn f(q: u32, word: u32, acc: f32) -> f32 {
  if (MATH == 3u) { return bitcast<f32>(bitcast<u32>(acc) ^ word); }
  let v = xq(q);
  let a = widen(word);
  return fma(v.w, a.w, fma(v.z, a.z, fma(v.y, a.y, fma(v.x, a.x, acc))));
}

// The named accumulators (never an array indexed by a loop variable: NVIDIA puts those in local memory).
struct Acc { a0: f32, a1: f32, a2: f32, a3: f32 }

fn add(acc: ptr<function, Acc>, j: u32, q: u32, word: u32) {
  let k = j % ACC;
  if (k == 0u) { (*acc).a0 = f(q, word, (*acc).a0); }
  if (k == 1u) { (*acc).a1 = f(q, word, (*acc).a1); }
  if (k == 2u) { (*acc).a2 = f(q, word, (*acc).a2); }
  if (k == 3u) { (*acc).a3 = f(q, word, (*acc).a3); }
}

// Words q, q + LANES, … q + 7·LANES of row `row` (the first UW of them).
struct Words { w0: u32, w1: u32, w2: u32, w3: u32, w4: u32, w5: u32, w6: u32, w7: u32 }

fn load(row: u32, q: u32) -> Words {
  var r = Words();
  r.w0 = w[row + q];
  r.w1 = w[row + q + LANES];
  if (UW > 2u) {
    r.w2 = w[row + q + 2u * LANES];
    r.w3 = w[row + q + 3u * LANES];
  }
  if (UW > 4u) {
    r.w4 = w[row + q + 4u * LANES];
    r.w5 = w[row + q + 5u * LANES];
    r.w6 = w[row + q + 6u * LANES];
    r.w7 = w[row + q + 7u * LANES];
  }
  return r;
}

fn math(acc: ptr<function, Acc>, q: u32, r: Words) {
  add(acc, 0u, q, r.w0);
  add(acc, 1u, q + LANES, r.w1);
  if (UW > 2u) {
    add(acc, 2u, q + 2u * LANES, r.w2);
    add(acc, 3u, q + 3u * LANES, r.w3);
  }
  if (UW > 4u) {
    add(acc, 4u, q + 4u * LANES, r.w4);
    add(acc, 5u, q + 5u * LANES, r.w5);
    add(acc, 6u, q + 6u * LANES, r.w6);
    add(acc, 7u, q + 7u * LANES, r.w7);
  }
}

fn row_sum(n: u32, lane: u32) -> f32 {
  var acc = Acc();
  let row = n * p.kw;
  let step = UW * LANES;
  var q = lane;
  if (BLOCKED) {
    // Round b's words of row n start at (b·N + n)·step; `load` adds q, so subtract the round's own b·step.
    for (; q < p.kw; q += step) {
      let b = q / step;
      math(&acc, q, load((b * p.n + n) * step - b * step, q));
    }
    return (acc.a0 + acc.a1) + (acc.a2 + acc.a3);
  }
  if (PIPE) {
    var next = Words();
    if (q + (UW - 1u) * LANES < p.kw) { next = load(row, q); }
    for (; q + (UW - 1u) * LANES < p.kw; q += step) {
      let cur = next;
      if (q + step + (UW - 1u) * LANES < p.kw) { next = load(row, q + step); }
      math(&acc, q, cur);
    }
  } else {
    for (; q + (UW - 1u) * LANES < p.kw; q += step) { math(&acc, q, load(row, q)); }
  }
  for (; q < p.kw; q += LANES) { acc.a0 = f(q, w[row + q], acc.a0); }
  return (acc.a0 + acc.a1) + (acc.a2 + acc.a3);
}

// R2: rows n0 and n1 of one lane, each x load used for both.
fn f2(q: u32, u: u32, v: u32, acc: vec2<f32>) -> vec2<f32> {
  let xv = xq(q);
  let a = widen(u);
  let b = widen(v);
  return vec2<f32>(fma(xv.w, a.w, fma(xv.z, a.z, fma(xv.y, a.y, fma(xv.x, a.x, acc.x)))),
                   fma(xv.w, b.w, fma(xv.z, b.z, fma(xv.y, b.y, fma(xv.x, b.x, acc.y)))));
}

fn row_sums2(n0: u32, n1: u32, lane: u32) -> vec2<f32> {
  var acc = vec2<f32>(0.0);
  // A row past N reads row n0 again (in bounds); its sum is not written.
  let r0 = n0 * p.kw;
  let r1 = select(n0, n1, n1 < p.n) * p.kw;
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
    acc = f2(q, u0, v0, acc);
    acc = f2(q + LANES, u1, v1, acc);
    acc = f2(q + 2u * LANES, u2, v2, acc);
    acc = f2(q + 3u * LANES, u3, v3, acc);
  }
  for (; q < p.kw; q += LANES) { acc = f2(q, w[r0 + q], w[r1 + q], acc); }
  return acc;
}

fn store(n: u32, sum: f32) {
  var prev = 0.0;
  if (ACCUM) { prev = out[n]; }
  out[n] = sum * scale[n] + prev;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let slot = li / LANES;
  let rows = WGS / LANES;
  let block = wg.y * p.groups_per_row + wg.x;
  var n0 = block * rows + slot;
  var n1 = 0u;
  if (R2) {
    n0 = block * 2u * rows + slot;
    n1 = n0 + rows;
  }
  var s = vec2<f32>(0.0);
  if (n0 < p.n) {
    if (R2) { s = row_sums2(n0, n1, lane); } else { s.x = row_sum(n0, lane); }
  }
  red[li] = s.x;
  red2[li] = s.y;
  workgroupBarrier();
  for (var st = LANES / 2u; st > 0u; st >>= 1u) {
    if (lane < st) {
      red[li] += red[li + st];
      if (R2) { red2[li] += red2[li + st]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    if (n0 < p.n) { store(n0, red[li]); }
    if (R2 && n1 < p.n) { store(n1, red2[li]); }
  }
}
