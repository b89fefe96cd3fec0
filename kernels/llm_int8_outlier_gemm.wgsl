// LLM.int8's f32 product of the outlier columns beyond the few the GEMM's epilogue takes, as a tiled GEMM
// of its own (bitsandbytes multiplies them as a separate fp16 matmul too):
//   out[t, n] += scale[n] · Σ_{first ≤ j < min(count, cap)} xo[t, j] · wo[n, j]
// over the compact copies of kernels/llm_int8_gather.wgsl. The count lives on the GPU, so every workgroup
// reads it and returns at once when there is nothing past `first` (then out is not touched). Random
// weights give thousands of outlier columns at the w2 input of a prompt (2168 of 16384 at 1800 tokens):
// walked per output in the epilogue they cost w2 10.6 ms against 3.7 for w1 on an H100.
// A 64×64 tile per workgroup of 256 threads, 4×4 outputs a thread; k in steps of 16 through workgroup
// memory (x transposed to k-major, the int8 weights widened to f32 on the way in); columns past the count
// are masked to zero (the copies are only written up to it).
//
// Bindings: 1 outliers [1 + K] u32 (count first), 2 xo [T, 4·cap4] f32 as vec4, 3 wo [N, cap4] u32 (i8x4),
//   4 scale [N] f32, 5 out [T, N] f32 (accumulated into).
// Params: t = T, n = N, cap4, first (a multiple of 4: columns the GEMM's epilogue took).
// Grid: (ceil(N/64), ceil(T/64)) workgroups of 256. Features: none.
struct Params { t: u32, n: u32, cap4: u32, first: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> outliers: array<u32>;
@group(0) @binding(2) var<storage, read> xo: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> wo: array<u32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// #include int8

const KS = 16u; // k per step
var<workgroup> xs: array<vec4<f32>, 256>; // [k][row group of 4]: rows 4g..4g+3 at k
var<workgroup> ws: array<vec4<f32>, 256>; // [k][column group of 4]
var<workgroup> kend_shared: u32;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  if (li == 0u) { kend_shared = min(outliers[0], 4u * p.cap4); }
  let kend = workgroupUniformLoad(&kend_shared);
  if (kend <= p.first) { return; }
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  let tx = li % 16u; // column group
  let ty = li / 16u; // row group
  // Loads: thread li brings row (and column) li / 4, k words li % 4 (4 k each) of the step.
  let lr = li / 4u;
  let lw = li % 4u;
  let xrow = min(m0 + lr, p.t - 1u);
  let wrow = min(n0 + lr, p.n - 1u);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k0 = p.first; k0 < kend; k0 += KS) {
    let word = k0 / 4u + lw; // < cap4: first and the cap are multiples of 4, kend ≤ 4·cap4
    let k = 4u * word;
    let live = vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(kend);
    var xv = vec4<f32>(0.0);
    var wv = vec4<f32>(0.0);
    if (word < p.cap4) {
      xv = select(vec4<f32>(0.0), xo[xrow * p.cap4 + word], live);
      wv = select(vec4<f32>(0.0), i8x4(wo[wrow * p.cap4 + word]), live);
    }
    let g = lr / 4u;
    let c = lr % 4u;
    let kk = 4u * lw;
    xs[kk * 16u + g][c] = xv.x;
    xs[(kk + 1u) * 16u + g][c] = xv.y;
    xs[(kk + 2u) * 16u + g][c] = xv.z;
    xs[(kk + 3u) * 16u + g][c] = xv.w;
    ws[kk * 16u + g][c] = wv.x;
    ws[(kk + 1u) * 16u + g][c] = wv.y;
    ws[(kk + 2u) * 16u + g][c] = wv.z;
    ws[(kk + 3u) * 16u + g][c] = wv.w;
    workgroupBarrier();
    for (var q = 0u; q < KS; q++) {
      let xr = xs[q * 16u + ty];
      let wc = ws[q * 16u + tx];
      a0 = fma(vec4<f32>(xr.x), wc, a0);
      a1 = fma(vec4<f32>(xr.y), wc, a1);
      a2 = fma(vec4<f32>(xr.z), wc, a2);
      a3 = fma(vec4<f32>(xr.w), wc, a3);
    }
    workgroupBarrier();
  }
  let col = n0 + 4u * tx;
  for (var j = 0u; j < 4u; j++) {
    let n = col + j;
    if (n >= p.n) { continue; }
    let s = scale[n];
    let r = m0 + 4u * ty;
    if (r < p.t) { out[r * p.n + n] += s * a0[j]; }
    if (r + 1u < p.t) { out[(r + 1u) * p.n + n] += s * a1[j]; }
    if (r + 2u < p.t) { out[(r + 2u) * p.n + n] += s * a2[j]; }
    if (r + 3u < p.t) { out[(r + 3u) * p.n + n] += s * a3[j]; }
  }
}
