// The attention_decode_combine kernel before the register-resident rewrite, kept only as
// scripts/bench_attention_decode.ts's baseline (launched nowhere else; same bindings, the old Params).
// Second pass of kernels/attention_decode.wgsl (num_splits > 1): merges the per-split partial rows of each
// (sample, head) row r — o_s unnormalised [Dh], then (m_s, l_s, 0, 0):
//   M = max over splits with l_s > 0,  out = Σ_s o_s·e^(m_s−M) / Σ_s l_s·e^(m_s−M);  no such split gives 0.
// Bindings: 1 partial [num_splits, R, Dh+4] f32 (R = B·H), 2 out [R, Dh] f32 (= [B, H·Dh]).
// Params: rows R, num_splits. Overrides: D4 = Dh/4 (1..32).
// Grid: (R) workgroups of 256 threads: thread = (column c = li % D4, split group sg = li / D4); a split
//   group merges splits sg, sg + SG, … online (SG = 256/D4), then the groups merge through workgroup memory.
// Features: none.
struct Params { rows: u32, num_splits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;

override D4: u32 = 32u;

const WG = 256u;
const NEG = -3.0e38;

var<workgroup> gm: array<f32, 256>;   // [SG][D4] each group's max (the same for every column)
var<workgroup> gl: array<f32, 256>;   // [SG][D4] each group's Σ l·e^(m−max)
var<workgroup> go: array<vec4f, 256>; // [SG][D4] each group's Σ o·e^(m−max)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = wg.x;
  let SG = WG / D4;
  let c = li % D4;
  let sg = li / D4;
  var m = NEG;
  var l = 0.0;
  var o = vec4f(0.0);
  if (sg < SG) {
    for (var s = sg; s < p.num_splits; s += SG) {
      let base = (s * p.rows + r) * (D4 + 1u);
      // No branch on l_s > 0: a split that saw no valid key has o = 0, l = 0 and m = NEG, so it adds
      // nothing, and a loop free of branches lets the compiler keep several splits' loads in flight.
      let ml = partial[base + D4];
      let m_new = max(m, ml.x);
      let a = exp(m - m_new);
      let w = exp(ml.x - m_new);
      o = o * a + partial[base + c] * w;
      l = l * a + ml.y * w;
      m = m_new;
    }
  }
  gm[li] = m;
  gl[li] = l;
  go[li] = o;
  workgroupBarrier();
  if (li < D4) {
    var big_m = NEG;
    for (var g = 0u; g < SG; g++) {
      if (gl[g * D4 + li] > 0.0) { big_m = max(big_m, gm[g * D4 + li]); }
    }
    var num = vec4f(0.0);
    var den = 0.0;
    for (var g = 0u; g < SG; g++) {
      let lg = gl[g * D4 + li];
      if (lg > 0.0) {
        let w = exp(gm[g * D4 + li] - big_m);
        num += go[g * D4 + li] * w;
        den += lg * w;
      }
    }
    out[r * D4 + li] = num * select(0.0, 1.0 / den, den > 0.0);
  }
}
