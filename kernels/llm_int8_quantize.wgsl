// LLM.int8 steps 2 and 3 (bitsandbytes int8_vectorwise_quant with threshold θ): per-row stats over the
// values below θ and the row quantized to int8 with the outlier columns zeroed,
//   sca[t]  = max{|x[t, c]| : |x[t, c]| < θ}  (0 if none)
//   q[t, c] = 0 if flags[c] (bitsandbytes: CA[:, idx] = 0), else round_half_even(x[t, c] · (127 / sca[t]))
// packed four per u32 (byte j of word i = column 4i + j, pack4xI8), columns K..Kp−1 zero. Workgroup 0
// also writes the compact list of flagged columns the GEMM's epilogue walks (kernels/linear_dp4a.wgsl).
// No clamp is needed for |q| ≤ 127: an unflagged column has |x| < θ in every row, so |x| ≤ sca[t]; the
// clamp only guards against the rounding of x·(127/sca) (WGSL's division is within 2.5 ulp).
//
// Bindings: 1 x        [T, K] f32 viewed as vec4 (K % 4 == 0)
//           2 flags    [K] u32 viewed as vec4, from kernels/llm_int8_outliers.wgsl
//           3 q        [T, Kp] i8x4 viewed as vec4<u32> (Kp = K rounded up to 16: the GEMM's x rows are
//                      whole 16-byte loads)
//           4 sca      [T] f32
//           5 outliers [1 + K] u32: the count, then the flagged columns in increasing order (workgroup 0)
// Params:   t = T, k4 = K/4, qv = Kp/16 (vec4 per q row), threshold θ (f32), groups_per_row.
// Grid:     T workgroups of 256 (one row each), folded into 2-D (src/ops/grid.ts).
// Features: packed_4x8_integer_dot_product (pack4xI8, core WGSL).
struct Params { t: u32, k4: u32, qv: u32, threshold: f32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> flags: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> q: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> sca: array<f32>;
@group(0) @binding(5) var<storage, read_write> outliers: array<u32>;

const WG = 256u;
var<workgroup> red: array<f32, WG>;
var<workgroup> scan: array<u32, WG>;

// Word i of the row (columns 4i..4i+3): int8 ×4, outlier columns and columns past K zero.
fn word(base: u32, i: u32, inv: f32) -> u32 {
  if (i >= p.k4) { return 0u; }
  let v = clamp(round(x[base + i] * inv), vec4<f32>(-127.0), vec4<f32>(127.0));
  return pack4xI8(select(vec4<i32>(v), vec4<i32>(), flags[i] != vec4<u32>()));
}

fn flag(c: u32) -> u32 {
  return select(0u, 1u, flags[c / 4u][c % 4u] != 0u);
}

// Workgroup 0: thread li lists the flagged columns of its segment [li·seg, li·seg + seg) at the offset
// the scan of the segments' counts gives it, so the list is in column order whatever the thread timing.
fn list_outliers(li: u32) {
  let k = 4u * p.k4;
  let seg = (k + WG - 1u) / WG;
  let lo = min(li * seg, k);
  let hi = min(lo + seg, k);
  var n = 0u;
  for (var c = lo; c < hi; c++) { n += flag(c); }
  scan[li] = n;
  workgroupBarrier();
  // Inclusive Hillis–Steele scan of the 256 counts.
  for (var s = 1u; s < WG; s <<= 1u) {
    let v = select(0u, scan[select(0u, li - s, li >= s)], li >= s);
    workgroupBarrier();
    scan[li] += v;
    workgroupBarrier();
  }
  var at = scan[li] - n;
  for (var c = lo; c < hi; c++) {
    if (flag(c) != 0u) {
      outliers[1u + at] = c;
      at++;
    }
  }
  if (li == WG - 1u) { outliers[0] = scan[li]; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wg.y * p.groups_per_row + wg.x;
  if (t >= p.t) { return; } // the whole workgroup: barriers below stay in uniform control flow
  if (t == 0u) { list_outliers(li); }
  let base = t * p.k4;
  var m = 0.0;
  for (var i = li; i < p.k4; i += WG) {
    let a = abs(x[base + i]);
    let b = select(vec4<f32>(), a, a < vec4<f32>(p.threshold));
    m = max(m, max(max(b.x, b.y), max(b.z, b.w)));
  }
  red[li] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let amax = red[0];
  // amax = 0: every value of the row below θ is 0, and every other one sits in a flagged column.
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  for (var j = li; j < p.qv; j += WG) {
    let i = 4u * j;
    q[t * p.qv + j] = vec4<u32>(word(base, i, inv), word(base, i + 1u, inv), word(base, i + 2u, inv),
                                word(base, i + 3u, inv));
  }
  if (li == 0u) { sca[t] = amax; }
}
