// The tiled linear kernel as it was before kernels/linear_tiled.wgsl took vec4 loads, double buffering and
// override tilings (commit 773355c): kept only as scripts/bench_gemm.ts's baseline, launched nowhere else.
//
// Tiled matrix-matrix linear layer for prefill / vision: out[t, n] = scale[n] · Σ_k x[t, k]·W[n, k] + bias[n].
// A 128×128 output tile per workgroup of 16×16 threads, each thread an 8×8 micro-tile (rows
// {ty*4+i, 64+ty*4+i}, cols {tx*4+j, 64+tx*4+j}) so shared reads are vec4 and conflict-free; K advances in
// steps of 16 through shared tiles, the next step's global loads are issued before the current step's math.
// Int8 weights are widened to f32 on their way into shared memory; the row scale is applied at the end.
//
// Bindings: 1 x     [T, K] f32 (any K)
//           2 w     int8: [N, K] i8x4 (kw = ceil(K/4) words per row, pad bytes zero)
//                   f32:  [N, K] f32 bits (kw = K)
//           3 scale [N] f32 (read only when has_scale)
//           4 bias  [N] f32 (read only when has_bias)
//           5 out   [T, N] f32
// Params:   t = T, n = N, k = K, kw, has_scale, has_bias, accumulate (1: out += result, the residual add)
// Overrides: INT8 (weight encoding).
// Grid:     (ceil(N/128), ceil(T/128)) workgroups of 256.
// Features: none. Workgroup memory: 16 KiB.
struct Params { t: u32, n: u32, k: u32, kw: u32, has_scale: u32, has_bias: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

override INT8: bool = true;
const BM = 128u;
const BN = 128u;
const BK = 16u;

// xs[k * 32 + m / 4][m % 4] = x[m0 + m, k0 + k]; ws likewise for weight rows.
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

// Every private value below is a named vec4 or scalar indexed by constants only: a private array indexed
// by a loop variable may be placed in local memory by the driver: with arrays this kernel ran at 2 TFLOP/s
// on an H200, with named vec4s at ~18 TFLOP/s (f32 FMA, int8 widened in shared memory).
fn x_at(m: u32, k: u32) -> f32 {
  if (m < p.t && k < p.k) { return x[m * p.k + k]; }
  return 0.0;
}

fn w_f32_at(n: u32, k: u32) -> f32 {
  if (n < p.n && k < p.k) { return bitcast<f32>(w[n * p.kw + k]); }
  return 0.0;
}

// 4 int8 weights of word `kw` of row n (k is a multiple of 4, so words past the row hold no weights).
fn w_i8_at(n: u32, kw: u32) -> vec4<f32> {
  if (n < p.n && kw < p.kw) { return vec4<f32>(unpack4xI8(w[n * p.kw + kw])); }
  return vec4<f32>();
}

// Loader role: each thread fetches 8 consecutive k (two vec4) of one x row and of one weight row.
struct Eight { lo: vec4<f32>, hi: vec4<f32> }

fn load_x(m: u32, k: u32) -> Eight {
  return Eight(
    vec4<f32>(x_at(m, k), x_at(m, k + 1u), x_at(m, k + 2u), x_at(m, k + 3u)),
    vec4<f32>(x_at(m, k + 4u), x_at(m, k + 5u), x_at(m, k + 6u), x_at(m, k + 7u)),
  );
}

fn load_w(n: u32, k: u32) -> Eight {
  if (INT8) {
    return Eight(w_i8_at(n, k / 4u), w_i8_at(n, k / 4u + 1u));
  }
  return Eight(
    vec4<f32>(w_f32_at(n, k), w_f32_at(n, k + 1u), w_f32_at(n, k + 2u), w_f32_at(n, k + 3u)),
    vec4<f32>(w_f32_at(n, k + 4u), w_f32_at(n, k + 5u), w_f32_at(n, k + 6u), w_f32_at(n, k + 7u)),
  );
}

// Transposed store: element j of the 8 goes to k row (lk + j), column r of the tile.
fn store_x(lk: u32, r: u32, v: Eight) {
  let at = lk * 32u + r / 4u;
  let c = r % 4u;
  xs[at][c] = v.lo.x;
  xs[at + 32u][c] = v.lo.y;
  xs[at + 64u][c] = v.lo.z;
  xs[at + 96u][c] = v.lo.w;
  xs[at + 128u][c] = v.hi.x;
  xs[at + 160u][c] = v.hi.y;
  xs[at + 192u][c] = v.hi.z;
  xs[at + 224u][c] = v.hi.w;
}

fn store_w(lk: u32, r: u32, v: Eight) {
  let at = lk * 32u + r / 4u;
  let c = r % 4u;
  ws[at][c] = v.lo.x;
  ws[at + 32u][c] = v.lo.y;
  ws[at + 64u][c] = v.lo.z;
  ws[at + 96u][c] = v.lo.w;
  ws[at + 128u][c] = v.hi.x;
  ws[at + 160u][c] = v.hi.y;
  ws[at + 192u][c] = v.hi.z;
  ws[at + 224u][c] = v.hi.w;
}

// out[m, n .. n+4) from the raw dot products v, with scale and bias; bounds-checked.
fn store_out(m: u32, n: u32, v: vec4<f32>) {
  if (m >= p.t) { return; }
  for (var j = 0u; j < 4u; j++) {
    let col = n + j;
    if (col < p.n) {
      var o = v[j];
      if (p.has_scale != 0u) { o *= scale[col]; }
      if (p.has_bias != 0u) { o += bias[col]; }
      if (p.accumulate != 0u) { o += out[m * p.n + col]; }
      out[m * p.n + col] = o;
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let tx = li % 16u;
  let ty = li / 16u;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let lr = li % 128u; // loader row within the tile
  let lk = (li / 128u) * 8u; // loader k offset within the step: 0 or 8

  var xr = load_x(m0 + lr, lk);
  var wr = load_w(n0 + lr, lk);
  store_x(lk, lr, xr);
  store_w(lk, lr, wr);
  workgroupBarrier();

  // Row i of the micro-tile: rows ty*4 + (0..3) then 64 + ty*4 + (0..3); cA = cols tx*4.., cB = 64 + tx*4..
  var a0 = vec4<f32>(); var a1 = vec4<f32>(); var a2 = vec4<f32>(); var a3 = vec4<f32>();
  var a4 = vec4<f32>(); var a5 = vec4<f32>(); var a6 = vec4<f32>(); var a7 = vec4<f32>();
  var b0 = vec4<f32>(); var b1 = vec4<f32>(); var b2 = vec4<f32>(); var b3 = vec4<f32>();
  var b4 = vec4<f32>(); var b5 = vec4<f32>(); var b6 = vec4<f32>(); var b7 = vec4<f32>();
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    let more = k0 + BK < p.k;
    if (more) {
      xr = load_x(m0 + lr, k0 + BK + lk);
      wr = load_w(n0 + lr, k0 + BK + lk);
    }
    for (var k = 0u; k < BK; k++) {
      let xl = xs[k * 32u + ty];
      let xh = xs[k * 32u + 16u + ty];
      let cA = ws[k * 32u + tx];
      let cB = ws[k * 32u + 16u + tx];
      a0 += xl.x * cA; a1 += xl.y * cA; a2 += xl.z * cA; a3 += xl.w * cA;
      a4 += xh.x * cA; a5 += xh.y * cA; a6 += xh.z * cA; a7 += xh.w * cA;
      b0 += xl.x * cB; b1 += xl.y * cB; b2 += xl.z * cB; b3 += xl.w * cB;
      b4 += xh.x * cB; b5 += xh.y * cB; b6 += xh.z * cB; b7 += xh.w * cB;
    }
    workgroupBarrier();
    if (more) {
      store_x(lk, lr, xr);
      store_w(lk, lr, wr);
    }
    workgroupBarrier();
  }

  let r0 = m0 + ty * 4u;
  let r1 = m0 + 64u + ty * 4u;
  let nA = n0 + tx * 4u;
  let nB = n0 + 64u + tx * 4u;
  store_out(r0, nA, a0); store_out(r0 + 1u, nA, a1); store_out(r0 + 2u, nA, a2); store_out(r0 + 3u, nA, a3);
  store_out(r1, nA, a4); store_out(r1 + 1u, nA, a5); store_out(r1 + 2u, nA, a6); store_out(r1 + 3u, nA, a7);
  store_out(r0, nB, b0); store_out(r0 + 1u, nB, b1); store_out(r0 + 2u, nB, b2); store_out(r0 + 3u, nB, b3);
  store_out(r1, nB, b4); store_out(r1 + 1u, nB, b5); store_out(r1 + 2u, nB, b6); store_out(r1 + 3u, nB, b7);
}
