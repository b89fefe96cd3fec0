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
// Params:   t = T, n = N, k = K, kw, has_scale, has_bias
// Overrides: INT8 (weight encoding).
// Grid:     (ceil(N/128), ceil(T/128)) workgroups of 256.
// Features: none. Workgroup memory: 16 KiB.
struct Params { t: u32, n: u32, k: u32, kw: u32, has_scale: u32, has_bias: u32 }
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

// Loader role: each thread fetches 8 consecutive k of one x row and of one weight row.
fn load_x(m: u32, k: u32) -> array<f32, 8> {
  var r: array<f32, 8>;
  if (m < p.t) {
    for (var j = 0u; j < 8u; j++) {
      if (k + j < p.k) { r[j] = x[m * p.k + k + j]; }
    }
  }
  return r;
}

fn load_w(n: u32, k: u32) -> array<f32, 8> {
  var r: array<f32, 8>;
  if (n < p.n) {
    if (INT8) {
      // k is a multiple of 8, so the 8 int8 are two whole words; words past the row are absent.
      let kw = k / 4u;
      if (kw < p.kw) {
        let a = vec4<f32>(unpack4xI8(w[n * p.kw + kw]));
        r[0] = a.x; r[1] = a.y; r[2] = a.z; r[3] = a.w;
      }
      if (kw + 1u < p.kw) {
        let b = vec4<f32>(unpack4xI8(w[n * p.kw + kw + 1u]));
        r[4] = b.x; r[5] = b.y; r[6] = b.z; r[7] = b.w;
      }
    } else {
      for (var j = 0u; j < 8u; j++) {
        if (k + j < p.k) { r[j] = bitcast<f32>(w[n * p.kw + k + j]); }
      }
    }
  }
  return r;
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
  for (var j = 0u; j < 8u; j++) {
    xs[(lk + j) * 32u + lr / 4u][lr % 4u] = xr[j];
    ws[(lk + j) * 32u + lr / 4u][lr % 4u] = wr[j];
  }
  workgroupBarrier();

  var acc: array<vec4<f32>, 16>; // acc[i] = row i (0..7), cols 0..3; acc[8 + i] = row i, cols 4..7
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    let more = k0 + BK < p.k;
    if (more) {
      xr = load_x(m0 + lr, k0 + BK + lk);
      wr = load_w(n0 + lr, k0 + BK + lk);
    }
    for (var k = 0u; k < BK; k++) {
      let a0 = xs[k * 32u + ty];
      let a1 = xs[k * 32u + 16u + ty];
      let b0 = ws[k * 32u + tx];
      let b1 = ws[k * 32u + 16u + tx];
      acc[0] += a0.x * b0;
      acc[1] += a0.y * b0;
      acc[2] += a0.z * b0;
      acc[3] += a0.w * b0;
      acc[4] += a1.x * b0;
      acc[5] += a1.y * b0;
      acc[6] += a1.z * b0;
      acc[7] += a1.w * b0;
      acc[8] += a0.x * b1;
      acc[9] += a0.y * b1;
      acc[10] += a0.z * b1;
      acc[11] += a0.w * b1;
      acc[12] += a1.x * b1;
      acc[13] += a1.y * b1;
      acc[14] += a1.z * b1;
      acc[15] += a1.w * b1;
    }
    workgroupBarrier();
    if (more) {
      for (var j = 0u; j < 8u; j++) {
        xs[(lk + j) * 32u + lr / 4u][lr % 4u] = xr[j];
        ws[(lk + j) * 32u + lr / 4u][lr % 4u] = wr[j];
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 8u; i++) {
    let m = m0 + select(ty * 4u + i, 64u + ty * 4u + i - 4u, i >= 4u);
    if (m >= p.t) { continue; }
    for (var h = 0u; h < 2u; h++) {
      let v = acc[h * 8u + i];
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + h * 64u + tx * 4u + j;
        if (n < p.n) {
          var o = v[j];
          if (p.has_scale != 0u) { o *= scale[n]; }
          if (p.has_bias != 0u) { o += bias[n]; }
          out[m * p.n + n] = o;
        }
      }
    }
  }
}
