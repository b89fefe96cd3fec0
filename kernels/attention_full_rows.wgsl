// InternViT attention for CPU adapters (Mesa's llvmpipe): the same result as attention_full.wgsl,
//   out = softmax((q · Dh^-0.5) · kᵀ) · v   per tile b and head h over all T tokens, no mask,
// in the form a CPU runs fast. llvmpipe runs a workgroup's invocations as 8-lane SIMD vectors (AVX2) but
// performs every storage or workgroup load lane by lane (~7 ns a scalar on the CI host), so loads, not FMAs,
// set its pace: attention_full's 2 FMAs a loaded scalar and 4 barriers a key block took ~0.77 s a call at the
// tiny fixture's shape (T 1025, 2 heads of 32) on one llvmpipe thread. Here each invocation owns 8 query
// rows, held in private variables with the output accumulators, and streams the keys one by one: each K and
// V row is loaded once for 8 rows (8 FMAs a loaded scalar), no workgroup memory, no barrier — ~0.14 s at that
// shape. The rows are 8 named variables reached through calls with constant arguments, so that after
// inlining every private index is a constant (an indexed private array is a per-lane gather on llvmpipe).
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

override D4: u32 = 8u;
const ROWS = 8u; // query rows an invocation owns
const WG = 8u; // invocations a workgroup: one 8-lane vector on llvmpipe

// One query row: its scaled q, its unnormalised output, the running max and sum of its scores.
struct Row { q: array<vec4f, 16>, acc: array<vec4f, 16>, m: f32, l: f32 }
var<private> r0: Row;
var<private> r1: Row;
var<private> r2: Row;
var<private> r3: Row;
var<private> r4: Row;
var<private> r5: Row;
var<private> r6: Row;
var<private> r7: Row;
var<private> kk: array<vec4f, 16>; // the current key
var<private> vv: array<vec4f, 16>; // its value

var<private> tok: u32;
var<private> rstride: u32; // vec4s per token row (H·Dh/4)
var<private> head0: u32; // vec4 index of (tile b, token 0, head h)

// Rows past T compute on row T − 1 (a valid row) and are never written.
fn startRow(row: ptr<private, Row>, t: u32) {
  let at = head0 + min(t, tok - 1u) * rstride;
  for (var c = 0u; c < D4; c++) {
    (*row).q[c] = q[at + c] * p.scale;
    (*row).acc[c] = vec4f(0.0);
  }
  (*row).m = -3.0e38;
  (*row).l = 0.0;
}

// Online softmax: rescale what the row has summed when its max grows.
fn acceptKey(row: ptr<private, Row>) {
  var s4 = vec4f(0.0);
  for (var c = 0u; c < D4; c++) { s4 = fma((*row).q[c], kk[c], s4); }
  let s = dot(s4, vec4f(1.0));
  let mn = max((*row).m, s);
  let corr = exp((*row).m - mn);
  let e = exp(s - mn);
  (*row).l = (*row).l * corr + e;
  (*row).m = mn;
  for (var c = 0u; c < D4; c++) { (*row).acc[c] = fma(vec4f(e), vv[c], (*row).acc[c] * corr); }
}

fn writeRow(row: ptr<private, Row>, t: u32) {
  if (t >= tok) { return; }
  let at = head0 + t * rstride;
  let inv = 1.0 / (*row).l;
  for (var c = 0u; c < D4; c++) { out[at + c] = (*row).acc[c] * inv; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  tok = p.tokens;
  rstride = p.num_heads * D4;
  head0 = wg.z * tok * rstride + wg.y * D4;
  let t0 = (wg.x * WG + li) * ROWS;
  startRow(&r0, t0);
  startRow(&r1, t0 + 1u);
  startRow(&r2, t0 + 2u);
  startRow(&r3, t0 + 3u);
  startRow(&r4, t0 + 4u);
  startRow(&r5, t0 + 5u);
  startRow(&r6, t0 + 6u);
  startRow(&r7, t0 + 7u);
  for (var j = 0u; j < tok; j++) {
    let at = head0 + j * rstride;
    for (var c = 0u; c < D4; c++) {
      kk[c] = k[at + c];
      vv[c] = v[at + c];
    }
    acceptKey(&r0);
    acceptKey(&r1);
    acceptKey(&r2);
    acceptKey(&r3);
    acceptKey(&r4);
    acceptKey(&r5);
    acceptKey(&r6);
    acceptKey(&r7);
  }
  writeRow(&r0, t0);
  writeRow(&r1, t0 + 1u);
  writeRow(&r2, t0 + 2u);
  writeRow(&r3, t0 + 3u);
  writeRow(&r4, t0 + 4u);
  writeRow(&r5, t0 + 5u);
  writeRow(&r6, t0 + 6u);
  writeRow(&r7, t0 + 7u);
}
