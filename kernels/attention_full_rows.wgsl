// InternViT attention for CPU adapters (Mesa's llvmpipe): the same result as attention_full.wgsl,
//   out = softmax((q · Dh^-0.5) · kᵀ) · v   per tile b and head h over all T tokens, no mask,
// in the form a CPU runs fast. llvmpipe runs a workgroup's invocations as 8-lane SIMD vectors (AVX2) but
// performs every storage or workgroup load lane by lane (~7 ns a scalar on the CI host), so loads, not FMAs,
// set its pace: attention_full's 2 FMAs a loaded scalar and 4 barriers a key block took ~0.77 s a call at the
// tiny fixture's shape (T 1025, 2 heads of 32) on one llvmpipe thread. Here each invocation owns 8 query
// rows, held in private variables with the output accumulators, and streams the keys one by one: each K and
// V row is loaded once for 8 rows (8 FMAs a loaded scalar), no workgroup memory, no barrier — ~0.14 s at that
// shape. The rows are 8 named variables reached through calls with constant arguments, so that after
// inlining every private index is a constant (an indexed private array is a per-lane gather on llvmpipe):
// kernels/query_rows.wgsl, shared with attention_prefill_rows.wgsl.
// On a GPU this form would spill and serialise; the model uses it on fallback adapters only.
//
// Bindings: 1 q [B·T, H·Dh] f32, 2 k, 3 v (same shape), 4 out (same shape); all read as vec4 (Dh % 4 == 0,
//   Dh ≤ 64: llvmpipe's compile time grows fast with the unrolled rows, ~1 s at Dh 32, 7 s at 64, 38 s at 128).
// Params: tokens T, num_heads H, head_dim Dh (unread: D4 carries it), scale = Dh^-0.5 (f32).
// Overrides: D4 = Dh / 4 (must match head_dim).
// Grid: (ceil(T / 64), H, B) workgroups of 8 invocations; invocation li owns rows 64·x + 8·li … + 7.
// Features: none.
struct Params { tokens: u32, num_heads: u32, head_dim: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;

// #include query_rows

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  tok = p.tokens;
  qstride = p.num_heads * D4;
  q0 = wg.z * tok * qstride + wg.y * D4; // K and V rows sit where the q rows do
  let t0 = (wg.x * WG + li) * ROWS;
  startRows(t0);
  for (var j = 0u; j < tok; j++) {
    let at = q0 + j * qstride;
    for (var c = 0u; c < D4; c++) {
      kk[c] = k[at + c];
      vv[c] = v[at + c];
    }
    acceptKey(&r0, true);
    acceptKey(&r1, true);
    acceptKey(&r2, true);
    acceptKey(&r3, true);
    acceptKey(&r4, true);
    acceptKey(&r5, true);
    acceptKey(&r6, true);
    acceptKey(&r7, true);
  }
  writeRows(t0);
}
