// Matrix-vector linear layer for decode (few tokens): out[t, n] = scale[n] · Σ_k x[t, k]·W[n, k] + bias[n].
// Bandwidth bound: each thread streams 16-byte chunks (vec4<u32>) of one weight row, consecutive lanes
// read consecutive chunks (coalesced); 64 lanes share a row, 4 rows per workgroup, then a shared-memory
// tree reduction (no subgroups on the production Vulkan path).
//
// Bindings: 1 x     [T, K] f32 viewed as vec4 (K % 4 == 0)
//           2 w     int8: [N, K] i8x4 viewed as vec4<u32> (K % 16 == 0: 16 int8 per chunk, rows 16-byte aligned)
//                   f32:  [N, K] f32 bits viewed as vec4<u32> (K % 4 == 0)
//           3 scale [N] f32 (SCB/127; read only when has_scale)
//           4 bias  [N] f32 (read only when has_bias)
//           5 out   [T, N] f32
// Params:   n = N, k4 = K/4 (x vec4 per row), kv = weight vec4 per row, has_scale, has_bias, groups_per_row
// Overrides: INT8 (weight encoding), TT = T (1..8; a constant so the accumulators stay in registers).
// Grid:     ceil(N/4) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none (unpack4xI8 is core WGSL).
struct Params { n: u32, k4: u32, kv: u32, has_scale: u32, has_bias: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

override INT8: bool = true;
override TT: u32 = 1u;
const LANES = 64u;
const ROWS = 4u;
const MAX_T = 8u;

// red[t * 256 + local index]: per-thread partial sums of every token.
var<workgroup> red: array<f32, 2048>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % LANES;
  let slot = li / LANES;
  let n = (wg.y * p.groups_per_row + wg.x) * ROWS + slot;
  var acc: array<f32, MAX_T>;
  if (n < p.n) {
    let row = n * p.kv;
    for (var c = lane; c < p.kv; c += LANES) {
      let wv = w[row + c];
      if (INT8) {
        // int8 → i32 (sign-extended) → f32 is exact; the row scale is applied once at the end.
        let w0 = vec4<f32>(unpack4xI8(wv.x));
        let w1 = vec4<f32>(unpack4xI8(wv.y));
        let w2 = vec4<f32>(unpack4xI8(wv.z));
        let w3 = vec4<f32>(unpack4xI8(wv.w));
        for (var t = 0u; t < TT; t++) {
          let xb = t * p.k4 + c * 4u;
          acc[t] += dot(x[xb], w0) + dot(x[xb + 1u], w1) + dot(x[xb + 2u], w2) + dot(x[xb + 3u], w3);
        }
      } else {
        let wf = bitcast<vec4<f32>>(wv);
        for (var t = 0u; t < TT; t++) {
          acc[t] += dot(x[t * p.k4 + c], wf);
        }
      }
    }
  }
  for (var t = 0u; t < TT; t++) {
    red[t * 256u + li] = acc[t];
  }
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var t = 0u; t < TT; t++) {
        red[t * 256u + li] += red[t * 256u + li + s];
      }
    }
    workgroupBarrier();
  }
  // Lane t of each row writes token t.
  if (n < p.n && lane < TT) {
    var v = red[lane * 256u + slot * LANES];
    if (p.has_scale != 0u) { v *= scale[n]; }
    if (p.has_bias != 0u) { v += bias[n]; }
    out[lane * p.n + n] = v;
  }
}
