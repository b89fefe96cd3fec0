// Second pass of kernels/attention_decode.wgsl (num_splits > 1): merges the per-split partial rows of each
// (sample, head) row r = b·H + h — o_s unnormalised [Dh], then (m_s, l_s, 0, 0):
//   M = max over splits with l_s > 0,  out = Σ_s o_s·e^(m_s−M) / Σ_s l_s·e^(m_s−M);  no such split gives 0.
// Latency: a thread issues the loads of up to 4 splits before it merges any, so up to 4·SG splits (32 at
// Dh = 128, one row a workgroup) cost one round trip to L2, where the first pass has just written them.
// SCAN = 1 (INT8_MATMUL=llm-int8, the wo input): a workgroup takes head h of every row (RP ≥ B rows) and
// also does the LLM.int8 rows scan of its columns (kernels/llm_int8_rows_scan.wgsl, plain mode, one block a
// head): colbits of its vec4 columns, partial[h·8 + b] (row b's max |out| below θ) and count[h] — the
// pack pass (kernels/llm_int8_rows_pack.wgsl, `sub` = 32/D4 heads a block of its own) follows directly.
// With SCAN, a step's rows may be 2 or 3 row groups quantized apart (src/ops/matvec_dp4a.ts
// `llmInt8RowsGroups`): workgroup row y takes group y — its rows from row y·start1, its scan arrays after the
// groups' before it (colbits and count y·H·D4 on, scan_partial 8·y·H·D4), as the rows scan pass leaves them.
// Bindings: 1 partial [num_splits, R, Dh+4] f32 (R = B·H), 2 out [R, Dh] f32 (= [B, H·Dh]),
//   3 colbits [H·D4] u32, 4 scan_partial [H·8] f32, 5 count [H] u32 (SCAN; any writable buffers otherwise).
// Params: rows R, num_splits, heads H, batch B (SCAN: of the first group), threshold θ (SCAN), batch1 and
//   batch2 (the second and third groups' rows; 0: none), start1 (the second group's first row).
// Overrides: D4 = Dh/4 (1..32), RP rows a workgroup (1, or with SCAN a power of two ≥ each group's rows,
//   D4·RP ≤ 256), SCAN.
// Grid: (R) workgroups of 256 threads (RP = 1), or (H, groups) (RP > 1, or SCAN): thread = (row
//   b = li / (SG·D4), split group sg, column c = li % D4), SG = 256/(D4·RP); a split group merges splits sg,
//   sg + SG, …, then the groups merge through workgroup memory.
// Workgroup memory 7.2 KiB. Features: none.
struct Params { rows: u32, num_splits: u32, heads: u32, batch: u32, threshold: f32, batch1: u32, batch2: u32,
                 start1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> colbits: array<u32>;
@group(0) @binding(4) var<storage, read_write> scan_partial: array<f32>;
@group(0) @binding(5) var<storage, read_write> count: array<u32>;

override D4: u32 = 32u;
override RP: u32 = 1u;
override SCAN: u32 = 0u;

const WG = 256u;
const NEG = -3.0e38;

var<workgroup> gm: array<f32, 256>; // [RP][SG][D4] each group's max (the same for every column)
var<workgroup> gl: array<f32, 256>; // [RP][SG][D4] each group's Σ l·e^(m−max)
var<workgroup> go: array<vec4f, 256>; // [RP][SG][D4] each group's Σ o·e^(m−max)
var<workgroup> gb: array<u32, 256>; // SCAN: [RP][D4] each output's outlier bits
var<workgroup> gc: array<u32, 32>; // SCAN: [D4] each column's outlier count (0–4)

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

// SCAN: row maxima below θ through gl as [row][column] then a tree over the D4 columns; the columns' bits
// over the rows through gb — every thread below RP·D4 holds (row b of the group's nb, column c), v its output
// (zeros past the group's rows); k0 = y·H·D4 is where group y's scan arrays start.
fn scan(h: u32, li: u32, v: vec4f, nb: u32, k0: u32) {
  let b = li / D4;
  let c = li % D4;
  let mine = li < RP * D4 && b < nb;
  let a = abs(v);
  let big = a >= vec4f(p.threshold);
  let keep = select(a, vec4f(0.0), big);
  workgroupBarrier(); // the merge's reads of gm, gl are done
  if (li < RP * D4) {
    gl[li] = select(0.0, max(max(keep.x, keep.y), max(keep.z, keep.w)), mine);
    let bits = select(0u, 1u, big.x) | select(0u, 2u, big.y) | select(0u, 4u, big.z) | select(0u, 8u, big.w);
    gb[li] = select(0u, bits, mine);
  }
  workgroupBarrier();
  // Column c's bits over every row, by thread c.
  if (li < D4) {
    var nib = 0u;
    for (var r = 0u; r < RP; r++) { nib |= gb[r * D4 + li]; }
    colbits[k0 + h * D4 + li] = nib;
    gc[li] = countOneBits(nib);
  }
  workgroupBarrier();
  // One tree over the D4 columns for every row's maximum and the columns' counts.
  for (var st = D4 / 2u; st > 0u; st >>= 1u) {
    if (li < RP * D4 && c < st) { gl[li] = max(gl[li], gl[li + st]); }
    if (li < st) { gc[li] += gc[li + st]; }
    workgroupBarrier();
  }
  if (li < RP * D4 && c == 0u && b < nb) { scan_partial[8u * k0 + h * 8u + b] = gl[li]; }
  if (li == 0u) { count[k0 + h] = gc[0]; }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let SG = WG / (D4 * RP);
  let c = li % D4;
  let sg = (li / D4) % SG;
  let b = li / (SG * D4); // RP > 1: the row of this thread's split group (RP = 1: 0)
  var r = wg.x; // RP = 1: one row a workgroup
  var h = wg.x;
  // RP > 1: group y's rows, from row r0.
  let y = wg.y;
  let nb = select(select(p.batch, p.batch1, y == 1u), p.batch2, y == 2u);
  let r0 = y * p.start1;
  if (RP > 1u) { r = (r0 + b) * p.heads + h; } else { h = r % p.heads; }
  let live = b < RP && (RP == 1u || b < nb);
  var m = NEG;
  var l = 0.0;
  var o = vec4f(0.0);
  if (live) {
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
  // Thread (row rb, column cc) below RP·D4 merges its row's SG groups.
  let rb = li / D4;
  var v = vec4f(0.0);
  if (li < RP * D4 && (RP == 1u || rb < nb)) {
    let at = rb * SG * D4 + c;
    var big_m = NEG;
    for (var g = 0u; g < SG; g++) {
      if (gl[at + g * D4] > 0.0) { big_m = max(big_m, gm[at + g * D4]); }
    }
    var num = vec4f(0.0);
    var den = 0.0;
    for (var g = 0u; g < SG; g++) {
      let lg = gl[at + g * D4];
      if (lg > 0.0) {
        let w = exp(gm[at + g * D4] - big_m);
        num += go[at + g * D4] * w;
        den += lg * w;
      }
    }
    v = num * select(0.0, 1.0 / den, den > 0.0);
    var row = r;
    if (RP > 1u) { row = (r0 + rb) * p.heads + h; }
    out[row * D4 + c] = v;
  }
  if (SCAN == 1u) { scan(h, li, v, nb, y * p.heads * D4); }
}
