// Second pass of kernels/attention_decode.wgsl (num_splits > 1): merges the per-split partial rows of each
// (sample, head) row r — o_s unnormalised [Dh], then (m_s, l_s, 0, 0):
//   M = max over splits with l_s > 0,  out = Σ_s o_s·e^(m_s−M) / Σ_s l_s·e^(m_s−M);  no such split gives 0.
// Latency: a thread issues the loads of up to 4 splits before it merges any, so up to 4·SG splits (32 at
// Dh = 128) cost one round trip to L2, where the first pass has just written them.
// Bindings: 1 partial [num_splits, R, Dh+4] f32 (R = B·H), 2 out [R, Dh] f32 (= [B, H·Dh]).
// Params: rows R, num_splits. Overrides: D4 = Dh/4 (1..32).
// Grid: (R) workgroups of 256 threads: thread = (column c = li % D4, split group sg = li / D4); a split
//   group merges splits sg, sg + SG, … (SG = 256/D4), then the groups merge through workgroup memory.
// Workgroup memory 6 KiB. Features: none.
struct Params { rows: u32, num_splits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;

override D4: u32 = 32u;

const WG = 256u;
const NEG = -3.0e38;

var<workgroup> gm: array<f32, 256>; // [SG][D4] each group's max (the same for every column)
var<workgroup> gl: array<f32, 256>; // [SG][D4] each group's Σ l·e^(m−max)
var<workgroup> go: array<vec4f, 256>; // [SG][D4] each group's Σ o·e^(m−max)

// (m, l) and o of split s, or (NEG, 0) and zeros past the last split. The loads are unconditional
// (clamped) so the four of a batch are in flight together.
fn ml_of(s: u32, r: u32) -> vec2f {
  let ml = partial[(min(s, p.num_splits - 1u) * p.rows + r) * (D4 + 1u) + D4];
  return select(vec2f(NEG, 0.0), ml.xy, s < p.num_splits);
}

fn o_of(s: u32, r: u32, c: u32) -> vec4f {
  let o = partial[(min(s, p.num_splits - 1u) * p.rows + r) * (D4 + 1u) + c];
  return select(vec4f(0.0), o, s < p.num_splits);
}

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
    for (var s = sg; s < p.num_splits; s += 4u * SG) {
      let a0 = ml_of(s, r);
      let a1 = ml_of(s + SG, r);
      let a2 = ml_of(s + 2u * SG, r);
      let a3 = ml_of(s + 3u * SG, r);
      let x0 = o_of(s, r, c);
      let x1 = o_of(s + SG, r, c);
      let x2 = o_of(s + 2u * SG, r, c);
      let x3 = o_of(s + 3u * SG, r, c);
      // No branch on l_s > 0: a split that saw no valid key (or a slot past the last split) has o = 0,
      // l = 0 and m = NEG, so it adds nothing.
      let m_new = max(max(m, max(a0.x, a1.x)), max(a2.x, a3.x));
      let w = exp(vec4f(a0.x, a1.x, a2.x, a3.x) - m_new);
      let a = exp(m - m_new);
      o = o * a + (x0 * w.x + x1 * w.y) + (x2 * w.z + x3 * w.w);
      l = l * a + dot(vec4f(a0.y, a1.y, a2.y, a3.y), w);
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
