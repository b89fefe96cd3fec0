// Experiment (scripts/bench_matvec_dp4a.ts), not used by the model: per-row symmetric int8 quantization of
// activations, the "row-wise" half of bitsandbytes' LLM.int8 (without its outlier columns):
//   scale[t] = max_k |x[t, k]| / 127,  q[t, k] = round(x[t, k] / scale[t]) ∈ [−127, 127] (0 for an all-zero row)
// packed four per u32 word (byte j of word q = element 4q + j, the int8 weights' layout).
//
// Bindings: 1 x [T, K] f32 viewed as vec4 (K % 4 == 0), 2 xq [T, K/4] u32, 3 scale [T] f32.
// Params:   k4 = K/4.
// Grid:     T workgroups of 256 (one row each).
// Features: none.
struct Params { k4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let base = wg.x * p.k4;
  var m = 0.0;
  for (var q = li; q < p.k4; q += 256u) {
    let a = abs(x[base + q]);
    m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
  }
  red[li] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let amax = red[0];
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  for (var q = li; q < p.k4; q += 256u) {
    let v = clamp(round(x[base + q] * inv), vec4<f32>(-127.0), vec4<f32>(127.0));
    xq[base + q] = pack4xI8(vec4<i32>(v));
  }
  if (li == 0u) { scale[wg.x] = amax / 127.0; }
}
