// Tiled matrix-matrix linear layer (prefill, vision): out[t, n] = scale[n] · Σ_k x[t, k]·W[n, k] + bias[n].
// A BM×BN output tile per workgroup of TX×TY threads; each thread owns a (4·RH)×(4·CW) micro-tile: rows
// {j·BM/RH + ty*4 + i : j < RH}, cols {c·BN/CW + tx*4 + i : c < CW}, so every shared read is one vec4.
// K advances BK at a time through two shared buffers: while one is multiplied, the next step's global
// loads are in flight in registers and land in the other buffer, one barrier per step. With PF the last k
// of a step is multiplied after the barrier, from fragments read before it (the cutlass/maxas order): the
// warps then have 16·RH·CW FMAs to issue while the next step's first shared reads are in flight.
// Int8 weights are widened to f32 on their way into shared memory; the row scale is applied at the end.
//
// Bindings: 1 x     [T, K] f32 (any K; read here only when !VEC)
//           2 w     int8: [N, K] i8x4 (kw = ceil(K/4) words per row, pad bytes zero)
//                   f32:  [N, K] f32 bits (kw = K; read here only when !VEC)
//           3 scale [N] f32 (read only when has_scale)
//           4 bias  [N] f32 (read only when has_bias)
//           5 out   [T, N] f32
//           6 x4    binding 1's buffer seen as vec4<f32> (VEC: 16-byte loads)
//           7 w4    binding 2's buffer seen as vec4<u32> (VEC and f32 weights)
//           8 count [1] u32 (DYNK; any u32 buffer otherwise)
// Params:   t = T, n = N, k = K (the row length), kw, has_scale, has_bias, accumulate (1: out += result, the
//           residual add), kskip (DYNK: a count ≤ kskip was taken whole by the int8 GEMM's epilogue, so
//           the dispatch does nothing; 0 otherwise), kslice (SPLIT: k per split, a multiple of BK)
// Overrides: INT8 (weight encoding); VEC (K % 4 == 0: x and f32 weight rows are 16-byte aligned);
//           TX, TY (threads along N, M; multiples of 8 and 4), RH (2 or 4 row groups of 4), CW (1, 2 or 4
//           column groups of 4; RH·CW ≤ 8), BK (8, 16, 32), GM (tile rows per group of the launch order),
//           PF (last k of a step after the barrier), DYNK (LLM.int8's compact outlier columns,
//           src/ops/llm_int8.ts: k from 0 to min(count[0], K), read on the GPU; when count ≤ kskip every
//           workgroup returns without storing). BM = 4·RH·TY, BN = 4·CW·TX; BM·BK/4 and BN·BK/4
//           must be 1..4 times TX·TY (src/ops/linear.ts checks). SPLIT (split K): workgroup z sums k in
//           [z·kslice, (z+1)·kslice) only and stores that raw sum (no scale, bias or accumulate) at out[z, t, n]
//           ([splits, T, N]); kernels/linear_split_sum.wgsl adds the splits and applies the rest. For few
//           rows: a short prompt's (BM ≥ T) tiles alone were ~100 workgroups for a GPU of 132 multiprocessors.
// Grid:     (ceil(N/BN), ceil(T/BM), splits) workgroups of TX·TY.
// Features: none. Workgroup memory: 2·(BM+BN)·BK·4 bytes (32 KiB at 128×128, BK = 16).
struct Params {
  t: u32, n: u32, k: u32, kw: u32, has_scale: u32, has_bias: u32, accumulate: u32, kskip: u32, kslice: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// Aliases of bindings 1 and 2: WGSL cannot reinterpret a storage array, and x4 alone could not reach the
// last 1–3 floats of a buffer whose size is not a multiple of 16 (odd K), which the scalar view can.
@group(0) @binding(6) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> w4: array<vec4<u32>>;
// DYNK: LLM.int8's outlier list; k runs from 0 to min(count, K) (the count lives on the GPU).
@group(0) @binding(8) var<storage, read> count: array<u32>;

// #include int8

override INT8: bool = true;
override VEC: bool = true;
override TX: u32 = 16u;
override TY: u32 = 16u;
override RH: u32 = 2u;
override CW: u32 = 2u;
override BK: u32 = 16u;
override GM: u32 = 8u;
override PF: bool = false;
override DYNK: bool = false;
override SPLIT: bool = false;

override NT: u32 = TX * TY;
override BM: u32 = 4u * RH * TY;
override BN: u32 = 4u * CW * TX;
override KQ: u32 = BK / 4u; // 4-wide k groups per step
override XSL: u32 = BM * KQ / NT; // x vec4 loads per thread per step
override WSL: u32 = BN * KQ / NT; // weight vec4 (f32) or word (int8) loads per thread per step
override XV: u32 = BM * BK / 4u;
override WV: u32 = BN * BK / 4u;

// k-major tiles: xs[k * BM/4 + (c ^ swz(k/4))] holds rows 4c..4c+3 at k (ws likewise for weight rows).
// The XOR swizzle (< 8, so it stays within an aligned group of 8 vec4) makes the transposing scalar stores
// conflict-free (a warp stores 32/KQ rows × KQ k-groups) while the vec4 reads of a warp (4 ty, 8 tx values)
// still hit distinct bank groups. Two named buffers instead of one indexed by the step's parity: with literal
// k every shared index is a thread constant plus an immediate.
var<workgroup> xs0: array<vec4<f32>, XV>;
var<workgroup> ws0: array<vec4<f32>, WV>;
var<workgroup> xs1: array<vec4<f32>, XV>;
var<workgroup> ws1: array<vec4<f32>, WV>;

// Every per-thread value is a named scalar or vec4 indexed by constants only: a private array indexed by a
// loop variable may be placed in local memory by the driver (on an H200 that cost 9×).
var<private> lid: u32;
var<private> tx: u32;
var<private> ty: u32;
var<private> m0: u32;
var<private> n0: u32;
var<private> kdyn: u32; // DYNK: min(count, K)
var<private> zoff: u32; // SPLIT: where this split's [T, N] sums start in out
// k past this reads as zero: K, or (DYNK) the outlier count. Without DYNK the uniform p.k itself, so the
// weight-only kernel compiles exactly as before DYNK existed (a private copy of it cost 7 % on an H100).
fn kbound() -> u32 {
  if (DYNK) { return kdyn; }
  return p.k;
}

var<workgroup> kend_shared: u32;
// Accumulators: row i of the micro-tile × column group a, b, c or d (a8..a15, b8..b15 only when RH = 4;
// c, d only when CW = 4).
var<private> a0: vec4<f32>;
var<private> a1: vec4<f32>;
var<private> a2: vec4<f32>;
var<private> a3: vec4<f32>;
var<private> a4: vec4<f32>;
var<private> a5: vec4<f32>;
var<private> a6: vec4<f32>;
var<private> a7: vec4<f32>;
var<private> a8: vec4<f32>;
var<private> a9: vec4<f32>;
var<private> a10: vec4<f32>;
var<private> a11: vec4<f32>;
var<private> a12: vec4<f32>;
var<private> a13: vec4<f32>;
var<private> a14: vec4<f32>;
var<private> a15: vec4<f32>;
var<private> b0: vec4<f32>;
var<private> b1: vec4<f32>;
var<private> b2: vec4<f32>;
var<private> b3: vec4<f32>;
var<private> b4: vec4<f32>;
var<private> b5: vec4<f32>;
var<private> b6: vec4<f32>;
var<private> b7: vec4<f32>;
var<private> b8: vec4<f32>;
var<private> b9: vec4<f32>;
var<private> b10: vec4<f32>;
var<private> b11: vec4<f32>;
var<private> b12: vec4<f32>;
var<private> b13: vec4<f32>;
var<private> b14: vec4<f32>;
var<private> b15: vec4<f32>;
var<private> c0: vec4<f32>;
var<private> c1: vec4<f32>;
var<private> c2: vec4<f32>;
var<private> c3: vec4<f32>;
var<private> c4: vec4<f32>;
var<private> c5: vec4<f32>;
var<private> c6: vec4<f32>;
var<private> c7: vec4<f32>;
var<private> d0: vec4<f32>;
var<private> d1: vec4<f32>;
var<private> d2: vec4<f32>;
var<private> d3: vec4<f32>;
var<private> d4: vec4<f32>;
var<private> d5: vec4<f32>;
var<private> d6: vec4<f32>;
var<private> d7: vec4<f32>;
// PF: the fragments of a step's last k, multiplied after the barrier.
var<private> hx0: vec4<f32>;
var<private> hx1: vec4<f32>;
var<private> hx2: vec4<f32>;
var<private> hx3: vec4<f32>;
var<private> hw0: vec4<f32>;
var<private> hw1: vec4<f32>;
var<private> hw2: vec4<f32>;
var<private> hw3: vec4<f32>;
// The next step's global loads, held while the current step is multiplied: 4 consecutive k of one x row
// (sx), of one f32 weight row (sw) or one int8 weight word (sq).
var<private> sx0: vec4<f32>;
var<private> sx1: vec4<f32>;
var<private> sx2: vec4<f32>;
var<private> sx3: vec4<f32>;
var<private> sw0: vec4<f32>;
var<private> sw1: vec4<f32>;
var<private> sw2: vec4<f32>;
var<private> sw3: vec4<f32>;
var<private> sq0: u32;
var<private> sq1: u32;
var<private> sq2: u32;
var<private> sq3: u32;

fn swz(kq: u32) -> u32 {
  return kq * (32u / BK);
}

// ---- global → registers. Load slot i of this thread: tile row lid/KQ + i·NT/KQ, k group lid % KQ. Rows
// past the end are clamped (their results are never stored); k past K reads as zero.

fn tile_row(i: u32) -> u32 {
  return lid / KQ + i * (NT / KQ);
}

fn load_x(i: u32, k0: u32) -> vec4<f32> {
  let row = min(m0 + tile_row(i), p.t - 1u);
  let k = k0 + 4u * (lid % KQ);
  if (VEC) {
    let k4 = p.k / 4u;
    let v = x4[row * k4 + min(k / 4u, k4 - 1u)];
    return select(vec4<f32>(), v, k < kbound());
  }
  let base = row * p.k;
  let last = p.k - 1u;
  return vec4<f32>(
    select(0.0, x[base + min(k, last)], k < kbound()),
    select(0.0, x[base + min(k + 1u, last)], k + 1u < kbound()),
    select(0.0, x[base + min(k + 2u, last)], k + 2u < kbound()),
    select(0.0, x[base + min(k + 3u, last)], k + 3u < kbound()),
  );
}

fn load_wf(i: u32, k0: u32) -> vec4<f32> {
  let row = min(n0 + tile_row(i), p.n - 1u);
  let k = k0 + 4u * (lid % KQ);
  if (VEC) {
    let k4 = p.kw / 4u;
    let v = bitcast<vec4<f32>>(w4[row * k4 + min(k / 4u, k4 - 1u)]);
    return select(vec4<f32>(), v, k < kbound());
  }
  let base = row * p.kw;
  let last = p.k - 1u;
  return vec4<f32>(
    select(0.0, bitcast<f32>(w[base + min(k, last)]), k < kbound()),
    select(0.0, bitcast<f32>(w[base + min(k + 1u, last)]), k + 1u < kbound()),
    select(0.0, bitcast<f32>(w[base + min(k + 2u, last)]), k + 2u < kbound()),
    select(0.0, bitcast<f32>(w[base + min(k + 3u, last)]), k + 3u < kbound()),
  );
}

fn load_q(i: u32, k0: u32) -> u32 {
  let row = min(n0 + tile_row(i), p.n - 1u);
  let q = k0 / 4u + lid % KQ;
  if (DYNK) { return select(0u, w[row * p.kw + min(q, p.kw - 1u)], 4u * q < kdyn); } // past the count: 0
  return select(0u, w[row * p.kw + min(q, p.kw - 1u)], q < p.kw);
}

fn stage(k0: u32) {
  sx0 = load_x(0u, k0);
  if (XSL > 1u) { sx1 = load_x(1u, k0); }
  if (XSL > 2u) { sx2 = load_x(2u, k0); }
  if (XSL > 3u) { sx3 = load_x(3u, k0); }
  if (INT8) {
    sq0 = load_q(0u, k0);
    if (WSL > 1u) { sq1 = load_q(1u, k0); }
    if (WSL > 2u) { sq2 = load_q(2u, k0); }
    if (WSL > 3u) { sq3 = load_q(3u, k0); }
  } else {
    sw0 = load_wf(0u, k0);
    if (WSL > 1u) { sw1 = load_wf(1u, k0); }
    if (WSL > 2u) { sw2 = load_wf(2u, k0); }
    if (WSL > 3u) { sw3 = load_wf(3u, k0); }
  }
}

// ---- registers → shared (transposed to k-major, swizzled).

// Slot i's 4 values (k = 4kq..4kq+3 of one row) into column k, vec4 (row/4 ^ swz), lane row % 4.
fn put_x(odd: bool, i: u32, v: vec4<f32>) {
  let r = tile_row(i);
  let kq = lid % KQ;
  let at = 4u * kq * (BM / 4u) + ((r / 4u) ^ swz(kq));
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

fn put_w(odd: bool, i: u32, v: vec4<f32>) {
  let r = tile_row(i);
  let kq = lid % KQ;
  let at = 4u * kq * (BN / 4u) + ((r / 4u) ^ swz(kq));
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
  if (INT8) {
    put_w(odd, 0u, i8x4(sq0));
    if (WSL > 1u) { put_w(odd, 1u, i8x4(sq1)); }
    if (WSL > 2u) { put_w(odd, 2u, i8x4(sq2)); }
    if (WSL > 3u) { put_w(odd, 3u, i8x4(sq3)); }
  } else {
    put_w(odd, 0u, sw0);
    if (WSL > 1u) { put_w(odd, 1u, sw1); }
    if (WSL > 2u) { put_w(odd, 2u, sw2); }
    if (WSL > 3u) { put_w(odd, 3u, sw3); }
  }
}

// ---- the multiply: one k of the micro-tile from RH + CW vec4 shared reads. x<j>: rows of row group j,
// w<c>: columns of column group c; fragments a tiling does not use are zero and their FMAs compile away.

fn fma_tile(x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>,
            w2: vec4<f32>, w3: vec4<f32>) {
  a0 += x0.x * w0;
  a1 += x0.y * w0;
  a2 += x0.z * w0;
  a3 += x0.w * w0;
  a4 += x1.x * w0;
  a5 += x1.y * w0;
  a6 += x1.z * w0;
  a7 += x1.w * w0;
  if (CW > 1u) {
    b0 += x0.x * w1;
    b1 += x0.y * w1;
    b2 += x0.z * w1;
    b3 += x0.w * w1;
    b4 += x1.x * w1;
    b5 += x1.y * w1;
    b6 += x1.z * w1;
    b7 += x1.w * w1;
  }
  if (CW == 4u) {
    c0 += x0.x * w2;
    c1 += x0.y * w2;
    c2 += x0.z * w2;
    c3 += x0.w * w2;
    c4 += x1.x * w2;
    c5 += x1.y * w2;
    c6 += x1.z * w2;
    c7 += x1.w * w2;
    d0 += x0.x * w3;
    d1 += x0.y * w3;
    d2 += x0.z * w3;
    d3 += x0.w * w3;
    d4 += x1.x * w3;
    d5 += x1.y * w3;
    d6 += x1.z * w3;
    d7 += x1.w * w3;
  }
  if (RH == 4u) {
    a8 += x2.x * w0;
    a9 += x2.y * w0;
    a10 += x2.z * w0;
    a11 += x2.w * w0;
    a12 += x3.x * w0;
    a13 += x3.y * w0;
    a14 += x3.z * w0;
    a15 += x3.w * w0;
    if (CW > 1u) {
      b8 += x2.x * w1;
      b9 += x2.y * w1;
      b10 += x2.z * w1;
      b11 += x2.w * w1;
      b12 += x3.x * w1;
      b13 += x3.y * w1;
      b14 += x3.z * w1;
      b15 += x3.w * w1;
    }
  }
}

// One k's fragments: multiplied now, or (PF, the step's last k) held for after the barrier.
fn use_k(k: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, w0: vec4<f32>,
         w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>) {
  if (PF && k == BK - 1u) {
    hx0 = x0;
    hx1 = x1;
    hx2 = x2;
    hx3 = x3;
    hw0 = w0;
    hw1 = w1;
    hw2 = w2;
    hw3 = w3;
  } else {
    fma_tile(x0, x1, x2, x3, w0, w1, w2, w3);
  }
}

fn held() {
  if (PF) { fma_tile(hx0, hx1, hx2, hx3, hw0, hw1, hw2, hw3); }
}

// k is always a literal at the call sites, so the k loop is unrolled in the source (no loop counter, no
// per-iteration loop bookkeeping) and every index below is a per-thread value plus a constant. Row group j
// is vec4 j·TY + ty of a k row, column group c vec4 c·TX + tx.
fn mac0(k: u32) {
  let g = swz(k / 4u);
  let xr = k * (BM / 4u);
  let wr = k * (BN / 4u);
  var x2 = vec4<f32>();
  var x3 = vec4<f32>();
  var w1 = vec4<f32>();
  var w2 = vec4<f32>();
  var w3 = vec4<f32>();
  if (RH == 4u) {
    x2 = xs0[xr + ((2u * TY + ty) ^ g)];
    x3 = xs0[xr + ((3u * TY + ty) ^ g)];
  }
  if (CW > 1u) { w1 = ws0[wr + ((TX + tx) ^ g)]; }
  if (CW == 4u) {
    w2 = ws0[wr + ((2u * TX + tx) ^ g)];
    w3 = ws0[wr + ((3u * TX + tx) ^ g)];
  }
  use_k(k, xs0[xr + (ty ^ g)], xs0[xr + ((TY + ty) ^ g)], x2, x3, ws0[wr + (tx ^ g)], w1, w2, w3);
}

fn mac1(k: u32) {
  let g = swz(k / 4u);
  let xr = k * (BM / 4u);
  let wr = k * (BN / 4u);
  var x2 = vec4<f32>();
  var x3 = vec4<f32>();
  var w1 = vec4<f32>();
  var w2 = vec4<f32>();
  var w3 = vec4<f32>();
  if (RH == 4u) {
    x2 = xs1[xr + ((2u * TY + ty) ^ g)];
    x3 = xs1[xr + ((3u * TY + ty) ^ g)];
  }
  if (CW > 1u) { w1 = ws1[wr + ((TX + tx) ^ g)]; }
  if (CW == 4u) {
    w2 = ws1[wr + ((2u * TX + tx) ^ g)];
    w3 = ws1[wr + ((3u * TX + tx) ^ g)];
  }
  use_k(k, xs1[xr + (ty ^ g)], xs1[xr + ((TY + ty) ^ g)], x2, x3, ws1[wr + (tx ^ g)], w1, w2, w3);
}

fn step0() {
  mac0(0u); mac0(1u); mac0(2u); mac0(3u); mac0(4u); mac0(5u); mac0(6u); mac0(7u);
  if (BK > 8u) {
    mac0(8u); mac0(9u); mac0(10u); mac0(11u); mac0(12u); mac0(13u); mac0(14u); mac0(15u);
  }
  if (BK > 16u) {
    mac0(16u); mac0(17u); mac0(18u); mac0(19u); mac0(20u); mac0(21u); mac0(22u); mac0(23u);
    mac0(24u); mac0(25u); mac0(26u); mac0(27u); mac0(28u); mac0(29u); mac0(30u); mac0(31u);
  }
}

fn step1() {
  mac1(0u); mac1(1u); mac1(2u); mac1(3u); mac1(4u); mac1(5u); mac1(6u); mac1(7u);
  if (BK > 8u) {
    mac1(8u); mac1(9u); mac1(10u); mac1(11u); mac1(12u); mac1(13u); mac1(14u); mac1(15u);
  }
  if (BK > 16u) {
    mac1(16u); mac1(17u); mac1(18u); mac1(19u); mac1(20u); mac1(21u); mac1(22u); mac1(23u);
    mac1(24u); mac1(25u); mac1(26u); mac1(27u); mac1(28u); mac1(29u); mac1(30u); mac1(31u);
  }
}

// ---- epilogue: out[m, n .. n+4) = v · scale + bias (+ out), bounds-checked per element.

fn col_scale(n: u32) -> vec4<f32> {
  if (SPLIT || p.has_scale == 0u) { return vec4<f32>(1.0); }
  let last = p.n - 1u;
  return vec4<f32>(
    scale[min(n, last)], scale[min(n + 1u, last)], scale[min(n + 2u, last)], scale[min(n + 3u, last)],
  );
}

fn col_bias(n: u32) -> vec4<f32> {
  if (SPLIT || p.has_bias == 0u) { return vec4<f32>(); }
  let last = p.n - 1u;
  return vec4<f32>(
    bias[min(n, last)], bias[min(n + 1u, last)], bias[min(n + 2u, last)], bias[min(n + 3u, last)],
  );
}

fn store_one(m: u32, col: u32, v: f32) {
  if (SPLIT) {
    if (col < p.n) { out[zoff + m * p.n + col] = v; }
    return;
  }
  if (col < p.n) {
    let at = m * p.n + col;
    var o = v;
    if (p.accumulate != 0u) { o += out[at]; }
    out[at] = o;
  }
}

fn store_out(m: u32, n: u32, v: vec4<f32>) {
  if (m >= p.t) { return; }
  store_one(m, n, v.x);
  store_one(m, n + 1u, v.y);
  store_one(m, n + 2u, v.z);
  store_one(m, n + 3u, v.w);
}

// Rows r..r+3 of one column group: v<i> is row r + i.
fn store4(r: u32, n: u32, s: vec4<f32>, o: vec4<f32>, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>,
          v3: vec4<f32>) {
  store_out(r, n, v0 * s + o);
  store_out(r + 1u, n, v1 * s + o);
  store_out(r + 2u, n, v2 * s + o);
  store_out(r + 3u, n, v3 * s + o);
}

@compute @workgroup_size(NT)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  // Launch order: GM tile rows at a time, down the rows first, so the workgroups resident together share
  // a few x row blocks and a few weight column blocks in L2.
  let id = wg.y * groups.x + wg.x;
  let per_group = GM * groups.x;
  let first = (id / per_group) * GM;
  let rows = min(groups.y - first, GM);
  m0 = (first + (id % per_group) % rows) * BM;
  n0 = ((id % per_group) / rows) * BN;
  // A warp computes a 4 (ty) × 8 (tx) block of micro-tiles: its x reads are 4 distinct vec4, its weight
  // reads 8, one shared-memory wavefront each. The redundant "% NT", "% TX", "% TY" bound these values
  // for the driver's compiler, which may then drop the clamp WGSL puts on every shared-memory index.
  lid = li % NT;
  let warp = lid / 32u;
  let lane = lid % 32u;
  tx = ((warp % (TX / 8u)) * 8u + lane % 8u) % TX;
  ty = ((warp / (TX / 8u)) * 4u + lane / 8u) % TY;

  if (DYNK) {
    if (lid == 0u) { kend_shared = min(count[0], p.k); }
    kdyn = workgroupUniformLoad(&kend_shared);
    if (kdyn <= p.kskip) { return; } // the epilogue of linear_dp4a took them all: out is not touched
  }
  var kbeg = 0u;
  var kend = kbound();
  if (SPLIT) {
    kbeg = wg.z * p.kslice;
    kend = min(kend, kbeg + p.kslice);
    zoff = wg.z * p.t * p.n;
  }
  // A split past K (none when the launcher sizes kslice) still stores its zeros.
  let steps = select(0u, (kend - kbeg + BK - 1u) / BK, kend > kbeg);
  // The loads of the step after a split's last land in a buffer nobody multiplies (kslice % BK == 0).
  stage(kbeg);
  put(false);
  workgroupBarrier();
  for (var s = 0u; s < steps; s += 2u) {
    stage(kbeg + (s + 1u) * BK);
    step0();
    put(true);
    workgroupBarrier();
    held();
    if (s + 1u < steps) {
      stage(kbeg + (s + 2u) * BK);
      step1();
      put(false);
      workgroupBarrier();
      held();
    }
  }

  let r0 = m0 + ty * 4u;
  let r1 = r0 + BM / RH;
  let r2 = r1 + BM / RH;
  let r3 = r2 + BM / RH;
  let nA = n0 + tx * 4u;
  let sA = col_scale(nA);
  let oA = col_bias(nA);
  store4(r0, nA, sA, oA, a0, a1, a2, a3);
  store4(r1, nA, sA, oA, a4, a5, a6, a7);
  if (RH == 4u) {
    store4(r2, nA, sA, oA, a8, a9, a10, a11);
    store4(r3, nA, sA, oA, a12, a13, a14, a15);
  }
  if (CW > 1u) {
    let nB = nA + BN / CW;
    let sB = col_scale(nB);
    let oB = col_bias(nB);
    store4(r0, nB, sB, oB, b0, b1, b2, b3);
    store4(r1, nB, sB, oB, b4, b5, b6, b7);
    if (RH == 4u) {
      store4(r2, nB, sB, oB, b8, b9, b10, b11);
      store4(r3, nB, sB, oB, b12, b13, b14, b15);
    }
  }
  if (CW == 4u) {
    let nC = nA + 2u * (BN / CW);
    let sC = col_scale(nC);
    let oC = col_bias(nC);
    store4(r0, nC, sC, oC, c0, c1, c2, c3);
    store4(r1, nC, sC, oC, c4, c5, c6, c7);
    let nD = nA + 3u * (BN / CW);
    let sD = col_scale(nD);
    let oD = col_bias(nD);
    store4(r0, nD, sD, oD, d0, d1, d2, d3);
    store4(r1, nD, sD, oD, d4, d5, d6, d7);
  }
}
