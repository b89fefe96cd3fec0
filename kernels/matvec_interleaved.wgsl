// Experiment, not used by the model yet (scripts/bench_matvec_interleaved.ts): the plain int8 linear for a
// few tokens, out[t, n] (+)= s[n] · Σ_k x[t, k]·W[n, k], with the weights stored interleaved: the 16 int8 of
// row n at k = 16b … 16b+15 are vec4<u32> number b·N + n. Then the 32 lanes of a warp own 32 consecutive rows
// and load one 512-byte run per group, and every lane needs the same 16 values of x per token: one broadcast
// load serves the warp, where the row-major kernels make each lane fetch its own x (T·16 bytes of L1 per
// weight word, the suspected limit at 8 tokens). Lanes never share a row, so no cross-lane reduction: the 8
// warps of a workgroup take groups b ≡ warp (mod 8) and their partial sums meet once in workgroup memory.
//
// Bindings: 1 x [T, K] f32 viewed as vec4 (K % 16 == 0), 2 w [K/16 · N] vec4<u32> interleaved as above,
//           3 scale [N] f32, 4 out [T, N] f32.
// Params:   n = N, kb = K/16, groups_per_row, accumulate.
// Overrides: TT = T (1..8), R = rows per lane (1 or 2: the second is row + 32, sharing each x load).
// Grid:     ceil(N / (32·R)) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Workgroup memory: red [8 warps][TT][32·R] f32 ≤ 16 KiB. Features: none.
struct Params { n: u32, kb: u32, groups_per_row: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// #include int8

override TT: u32 = 1u;
override R: u32 = 2u;

var<workgroup> red: array<f32, 4096>;

struct Acc { t0: f32, t1: f32, t2: f32, t3: f32, t4: f32, t5: f32, t6: f32, t7: f32 }

// Σ over the 16 k of group b for token t: word j of the group covers x vec4 4b + j.
fn group_dot(t: u32, b: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) -> f32 {
  let at = t * (4u * p.kb) + 4u * b;
  return dot(x[at], a0) + dot(x[at + 1u], a1) + dot(x[at + 2u], a2) + dot(x[at + 3u], a3);
}

fn add_group(acc: ptr<function, Acc>, b: u32, ws: vec4<u32>) {
  let a0 = i8x4(ws.x);
  let a1 = i8x4(ws.y);
  let a2 = i8x4(ws.z);
  let a3 = i8x4(ws.w);
  (*acc).t0 += group_dot(0u, b, a0, a1, a2, a3);
  if (TT > 1u) { (*acc).t1 += group_dot(1u, b, a0, a1, a2, a3); }
  if (TT > 2u) { (*acc).t2 += group_dot(2u, b, a0, a1, a2, a3); }
  if (TT > 3u) { (*acc).t3 += group_dot(3u, b, a0, a1, a2, a3); }
  if (TT > 4u) { (*acc).t4 += group_dot(4u, b, a0, a1, a2, a3); }
  if (TT > 5u) { (*acc).t5 += group_dot(5u, b, a0, a1, a2, a3); }
  if (TT > 6u) { (*acc).t6 += group_dot(6u, b, a0, a1, a2, a3); }
  if (TT > 7u) { (*acc).t7 += group_dot(7u, b, a0, a1, a2, a3); }
}

fn pick(a: Acc, t: u32) -> f32 {
  switch t {
    case 0u: { return a.t0; }
    case 1u: { return a.t1; }
    case 2u: { return a.t2; }
    case 3u: { return a.t3; }
    case 4u: { return a.t4; }
    case 5u: { return a.t5; }
    case 6u: { return a.t6; }
    default: { return a.t7; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % 32u;
  let warp = li / 32u;
  let rows = 32u * R;
  let n0 = (wg.y * p.groups_per_row + wg.x) * rows;
  // Rows past N (the last workgroup) re-read row N−1 and write nothing.
  let na = min(n0 + lane, p.n - 1u);
  let nb = min(n0 + lane + 32u, p.n - 1u);
  var acc_a = Acc();
  var acc_b = Acc();
  var b = warp;
  // Two groups per row in flight per iteration.
  for (; b + 8u < p.kb; b += 16u) {
    let wa0 = w[b * p.n + na];
    let wa1 = w[(b + 8u) * p.n + na];
    var wb0 = vec4<u32>();
    var wb1 = vec4<u32>();
    if (R > 1u) {
      wb0 = w[b * p.n + nb];
      wb1 = w[(b + 8u) * p.n + nb];
    }
    add_group(&acc_a, b, wa0);
    add_group(&acc_a, b + 8u, wa1);
    if (R > 1u) {
      add_group(&acc_b, b, wb0);
      add_group(&acc_b, b + 8u, wb1);
    }
  }
  for (; b < p.kb; b += 8u) {
    add_group(&acc_a, b, w[b * p.n + na]);
    if (R > 1u) { add_group(&acc_b, b, w[b * p.n + nb]); }
  }
  // red[(warp·TT + t)·rows + r]: the 8 warps' partial sums of row r, token t.
  for (var t = 0u; t < TT; t++) {
    red[(warp * TT + t) * rows + lane] = pick(acc_a, t);
    if (R > 1u) { red[(warp * TT + t) * rows + lane + 32u] = pick(acc_b, t); }
  }
  workgroupBarrier();
  for (var i = li; i < rows * TT; i += 256u) {
    let r = i % rows;
    let t = i / rows;
    let n = n0 + r;
    if (n < p.n) {
      var s = 0.0;
      for (var k = 0u; k < 8u; k++) { s += red[(k * TT + t) * rows + r]; }
      var o = scale[n] * s;
      if (p.accumulate != 0u) { o += out[t * p.n + n]; }
      out[t * p.n + n] = o;
    }
  }
}
