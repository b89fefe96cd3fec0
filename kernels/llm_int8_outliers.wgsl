// LLM.int8 step 1 (bitsandbytes MatMul8bitLt, threshold θ): the outlier columns of x,
//   flags[c] = 1 if |x[t, c]| ≥ θ for ANY row t, else 0,
// as two dispatches of this kernel: CLEAR zeroes flags, then the flagging dispatch sets the columns it
// sees an outlier in. Any row may flag any column, so the flags are atomics (only outliers store, and all
// store the same 1: the result does not depend on the order). Two dispatches because a dispatch cannot wait
// for another workgroup's stores: the clear must be complete before the first flag lands.
//
// Bindings: 1 x     [T, K] f32 viewed as vec4 (K % 4 == 0; not read when CLEAR)
//           2 flags [K] u32, atomic (read by kernels/llm_int8_quantize.wgsl)
// Params:   n = vec4 of x (T·K/4), or K when CLEAR; k4 = K/4; threshold θ (f32); groups_per_row.
// Overrides: CLEAR (zero flags[0..n) instead of flagging).
// Grid:     ceil(n / 256) workgroups of 256 (one vec4 of x or one flag each), folded into 2-D
//           (src/ops/grid.ts).
// Features: none.
struct Params { n: u32, k4: u32, threshold: f32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;

override CLEAR: bool = false;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  if (CLEAR) {
    atomicStore(&flags[i], 0u);
    return;
  }
  // NaN compares false: a NaN never flags a column (torch's `abs() >= threshold` does not either).
  let hit = abs(x[i]) >= vec4<f32>(p.threshold);
  if (any(hit)) {
    let c = 4u * (i % p.k4);
    if (hit.x) { atomicStore(&flags[c], 1u); }
    if (hit.y) { atomicStore(&flags[c + 1u], 1u); }
    if (hit.z) { atomicStore(&flags[c + 2u], 1u); }
    if (hit.w) { atomicStore(&flags[c + 3u], 1u); }
  }
}
