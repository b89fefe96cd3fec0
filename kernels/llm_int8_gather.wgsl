// LLM.int8 pass 3½ (between kernels/llm_int8_quantize.wgsl and kernels/linear_dp4a.wgsl): compact copies
// of the outlier columns, so that the GEMM's epilogue multiplies them as a small dense product (one 16-byte
// load of x and one word of weights per 4 columns) instead of gathering every x[t, c] and weight byte
// CB[n, c] on its own (on an H100 that cost the ViT's fc1 +30 % at 64 outlier columns):
//   xo[t, j] = x[t, c_j]   and   wo[n, j] = CB[n, c_j]   for the first `cap` listed columns c_j,
// zero past the count (the GEMM reads whole words of 4). Columns past `cap` stay for the epilogue's
// scattered loop.
// A row of 64 threads per xo row (t) and wo row (n): lane l copies words j4 = l, l + 64, … below the
// count, so the work follows the count and not the cap (the cap only sizes the buffers; a few early
// layers of a random-weight LM give 6500 outlier columns of 16384).
//
// Bindings: 1 outliers [1 + K] u32 (count, then the columns), 2 x [T, K] f32, 3 w [N, K/4] u32 (i8x4),
//   4 xo [T, cap] f32, 5 wo [N, cap/4] u32 (i8x4).
// Params: t = T, n = N, k = K, cap4 = cap/4, groups_per_row.
// Grid: ceil(max(T, N) / 4) workgroups of 256 (4 rows of 64 lanes), folded into 2-D
//   (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params { t: u32, n: u32, k: u32, cap4: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> outliers: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read_write> xo: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> wo: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = (wg.y * p.groups_per_row + wg.x) * 4u + li / 64u;
  let count = outliers[0];
  // The words the GEMM reads: ceil(count/4) a row, up to the cap.
  let words = min((count + 3u) / 4u, p.cap4);
  for (var j4 = li % 64u; j4 < words; j4 += 64u) {
    var c = vec4<u32>(0u);
    let live = vec4<u32>(4u * j4) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(count);
    for (var b = 0u; b < 4u; b++) {
      if (live[b]) { c[b] = outliers[1u + 4u * j4 + b]; }
    }
    if (row < p.t) {
      let base = row * p.k;
      var v = vec4<f32>(0.0);
      for (var b = 0u; b < 4u; b++) {
        if (live[b]) { v[b] = x[base + c[b]]; }
      }
      xo[row * p.cap4 + j4] = v;
    }
    if (row < p.n) {
      let base = row * (p.k / 4u);
      var word = 0u;
      for (var b = 0u; b < 4u; b++) {
        if (live[b]) { word |= ((w[base + c[b] / 4u] >> (8u * (c[b] % 4u))) & 0xFFu) << (8u * b); }
      }
      wo[row * p.cap4 + j4] = word;
    }
  }
}
