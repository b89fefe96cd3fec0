// Tiled matrix-matrix linear layer (prefill, vision): out[t, n] = scale[n] · Σ_k x[t, k]·W[n, k] + bias[n].
// A BM×BN output tile per workgroup of TX×TY threads; each thread owns an 8×(4·CW) micro-tile: rows
// {ty*4+i, BM/2+ty*4+i}, cols {tx*4+j, BN/2+tx*4+j} (the second column group only when CW = 2), so every
// shared read is one vec4. K advances BK at a time through two shared buffers: while one is multiplied,
// the next step's global loads are in flight in registers and land in the other buffer, one barrier per step.
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
// Params:   t = T, n = N, k = K, kw, has_scale, has_bias, accumulate (1: out += result, the residual add)
// Overrides: INT8 (weight encoding); VEC (K % 4 == 0: x and f32 weight rows are 16-byte aligned);
//           TX, TY (threads along N, M; multiples of 8 and 4), CW (1 or 2 column groups of 4), BK (8, 16,
//           32), GM (tile rows per group of the launch order). BM = 8·TY, BN = 4·CW·TX; BM·BK/4 and
//           BN·BK/4 must be 1..4 times TX·TY (src/ops/linear.ts checks).
// Grid:     (ceil(N/BN), ceil(T/BM)) workgroups of TX·TY.
// Features: none. Workgroup memory: 2·(BM+BN)·BK·4 bytes (32 KiB at 128×128, BK = 16).
struct Params { t: u32, n: u32, k: u32, kw: u32, has_scale: u32, has_bias: u32, accumulate: u32 }
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

override INT8: bool = true;
override VEC: bool = true;
override TX: u32 = 16u;
override TY: u32 = 16u;
override CW: u32 = 2u;
override BK: u32 = 16u;
override GM: u32 = 8u;

override NT: u32 = TX * TY;
override BM: u32 = 8u * TY;
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
// Accumulators: a<i> = row i of the micro-tile × column group A, b<i> × column group B.
var<private> a0: vec4<f32>;
var<private> a1: vec4<f32>;
var<private> a2: vec4<f32>;
var<private> a3: vec4<f32>;
var<private> a4: vec4<f32>;
var<private> a5: vec4<f32>;
var<private> a6: vec4<f32>;
var<private> a7: vec4<f32>;
var<private> b0: vec4<f32>;
var<private> b1: vec4<f32>;
var<private> b2: vec4<f32>;
var<private> b3: vec4<f32>;
var<private> b4: vec4<f32>;
var<private> b5: vec4<f32>;
var<private> b6: vec4<f32>;
var<private> b7: vec4<f32>;
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
    return select(vec4<f32>(), v, k < p.k);
  }
  let base = row * p.k;
  let last = p.k - 1u;
  return vec4<f32>(
    select(0.0, x[base + min(k, last)], k < p.k),
    select(0.0, x[base + min(k + 1u, last)], k + 1u < p.k),
    select(0.0, x[base + min(k + 2u, last)], k + 2u < p.k),
    select(0.0, x[base + min(k + 3u, last)], k + 3u < p.k),
  );
}

fn load_wf(i: u32, k0: u32) -> vec4<f32> {
  let row = min(n0 + tile_row(i), p.n - 1u);
  let k = k0 + 4u * (lid % KQ);
  if (VEC) {
    let k4 = p.kw / 4u;
    let v = bitcast<vec4<f32>>(w4[row * k4 + min(k / 4u, k4 - 1u)]);
    return select(vec4<f32>(), v, k < p.k);
  }
  let base = row * p.kw;
  let last = p.k - 1u;
  return vec4<f32>(
    select(0.0, bitcast<f32>(w[base + min(k, last)]), k < p.k),
    select(0.0, bitcast<f32>(w[base + min(k + 1u, last)]), k + 1u < p.k),
    select(0.0, bitcast<f32>(w[base + min(k + 2u, last)]), k + 2u < p.k),
    select(0.0, bitcast<f32>(w[base + min(k + 3u, last)]), k + 3u < p.k),
  );
}

fn load_q(i: u32, k0: u32) -> u32 {
  let row = min(n0 + tile_row(i), p.n - 1u);
  let q = k0 / 4u + lid % KQ;
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

// Signed int8 byte j of word q, exactly, without the quarter-rate int → float conversion:
// with u = q ^ 0x80808080 each byte holds b + 128, and 2²³ + (b + 128) − (2²³ + 128) = b.
fn widen(q: u32) -> vec4<f32> {
  let u = q ^ 0x80808080u;
  return vec4<f32>(
    bitcast<f32>(0x4B000000u | (u & 0xFFu)),
    bitcast<f32>(0x4B000000u | ((u >> 8u) & 0xFFu)),
    bitcast<f32>(0x4B000000u | ((u >> 16u) & 0xFFu)),
    bitcast<f32>(0x4B000000u | (u >> 24u)),
  ) - 8388736.0;
}

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
    put_w(odd, 0u, widen(sq0));
    if (WSL > 1u) { put_w(odd, 1u, widen(sq1)); }
    if (WSL > 2u) { put_w(odd, 2u, widen(sq2)); }
    if (WSL > 3u) { put_w(odd, 3u, widen(sq3)); }
  } else {
    put_w(odd, 0u, sw0);
    if (WSL > 1u) { put_w(odd, 1u, sw1); }
    if (WSL > 2u) { put_w(odd, 2u, sw2); }
    if (WSL > 3u) { put_w(odd, 3u, sw3); }
  }
}

// ---- the multiply: one k of the micro-tile from four vec4 shared reads.

fn fma_tile(xl: vec4<f32>, xh: vec4<f32>, cA: vec4<f32>, cB: vec4<f32>) {
  a0 += xl.x * cA;
  a1 += xl.y * cA;
  a2 += xl.z * cA;
  a3 += xl.w * cA;
  a4 += xh.x * cA;
  a5 += xh.y * cA;
  a6 += xh.z * cA;
  a7 += xh.w * cA;
  if (CW == 2u) {
    b0 += xl.x * cB;
    b1 += xl.y * cB;
    b2 += xl.z * cB;
    b3 += xl.w * cB;
    b4 += xh.x * cB;
    b5 += xh.y * cB;
    b6 += xh.z * cB;
    b7 += xh.w * cB;
  }
}

// k is always a literal at the call sites, so the k loop is unrolled in the source (no loop counter, no
// per-iteration loop bookkeeping) and every index below is a per-thread value plus a constant.
fn mac0(k: u32) {
  let g = swz(k / 4u);
  let xr = k * (BM / 4u);
  let wr = k * (BN / 4u);
  var cB = vec4<f32>();
  if (CW == 2u) { cB = ws0[wr + ((BN / 8u + tx) ^ g)]; }
  fma_tile(xs0[xr + (ty ^ g)], xs0[xr + ((BM / 8u + ty) ^ g)], ws0[wr + (tx ^ g)], cB);
}

fn mac1(k: u32) {
  let g = swz(k / 4u);
  let xr = k * (BM / 4u);
  let wr = k * (BN / 4u);
  var cB = vec4<f32>();
  if (CW == 2u) { cB = ws1[wr + ((BN / 8u + tx) ^ g)]; }
  fma_tile(xs1[xr + (ty ^ g)], xs1[xr + ((BM / 8u + ty) ^ g)], ws1[wr + (tx ^ g)], cB);
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
  if (p.has_scale == 0u) { return vec4<f32>(1.0); }
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

fn store_one(m: u32, col: u32, v: f32) {
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

  let steps = (p.k + BK - 1u) / BK;
  stage(0u);
  put(false);
  workgroupBarrier();
  for (var s = 0u; s < steps; s += 2u) {
    stage((s + 1u) * BK);
    step0();
    put(true);
    workgroupBarrier();
    if (s + 1u < steps) {
      stage((s + 2u) * BK);
      step1();
      put(false);
      workgroupBarrier();
    }
  }

  let rA = m0 + ty * 4u;
  let rB = rA + BM / 2u;
  let nA = n0 + tx * 4u;
  let sA = col_scale(nA);
  let oA = col_bias(nA);
  store_out(rA, nA, a0 * sA + oA);
  store_out(rA + 1u, nA, a1 * sA + oA);
  store_out(rA + 2u, nA, a2 * sA + oA);
  store_out(rA + 3u, nA, a3 * sA + oA);
  store_out(rB, nA, a4 * sA + oA);
  store_out(rB + 1u, nA, a5 * sA + oA);
  store_out(rB + 2u, nA, a6 * sA + oA);
  store_out(rB + 3u, nA, a7 * sA + oA);
  if (CW == 2u) {
    let nB = nA + BN / 2u;
    let sB = col_scale(nB);
    let oB = col_bias(nB);
    store_out(rA, nB, b0 * sB + oB);
    store_out(rA + 1u, nB, b1 * sB + oB);
    store_out(rA + 2u, nB, b2 * sB + oB);
    store_out(rA + 3u, nB, b3 * sB + oB);
    store_out(rB, nB, b4 * sB + oB);
    store_out(rB + 1u, nB, b5 * sB + oB);
    store_out(rB + 2u, nB, b6 * sB + oB);
    store_out(rB + 3u, nB, b7 * sB + oB);
  }
}
