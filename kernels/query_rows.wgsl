// Not a kernel: the 8 query rows an invocation holds in the attentions for CPU adapters
// (attention_full_rows.wgsl, attention_prefill_rows.wgsl: read the first one's header for why), pasted where
// either says `// #include query_rows` (src/gpu/kernel_source.ts). The including kernel supplies the bindings
// q and out (vec4 rows), p.scale, and sets tok, qstride and q0 before the first startRow; per key it fills
// kk and vv and calls acceptKey for each row. The rows are 8 named variables reached through calls with
// constant arguments, so that after inlining every private index is a constant (an indexed private array is
// a per-lane gather on llvmpipe). Head dims ≤ 64 (16 vec4).

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

var<private> tok: u32; // T
var<private> qstride: u32; // vec4s per q/out row (H·Dh/4)
var<private> q0: u32; // vec4 index of (sample or tile b, token 0, head h) in q and out

// Rows past T compute on row T − 1 (a valid row) and are never written.
fn startRow(row: ptr<private, Row>, t: u32) {
  let at = q0 + min(t, tok - 1u) * qstride;
  for (var c = 0u; c < D4; c++) {
    (*row).q[c] = q[at + c] * p.scale;
    (*row).acc[c] = vec4f(0.0);
  }
  (*row).m = -3.0e38;
  (*row).l = 0.0;
}

// Online softmax over the keys the row takes (`sees`), rescaling what it has summed when its max grows.
fn acceptKey(row: ptr<private, Row>, sees: bool) {
  if (!sees) { return; }
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

// A row that took no key comes out as zeros.
fn writeRow(row: ptr<private, Row>, t: u32) {
  if (t >= tok) { return; }
  let at = q0 + t * qstride;
  let inv = select(0.0, 1.0 / (*row).l, (*row).l > 0.0);
  for (var c = 0u; c < D4; c++) { out[at + c] = (*row).acc[c] * inv; }
}

fn startRows(t0: u32) {
  startRow(&r0, t0);
  startRow(&r1, t0 + 1u);
  startRow(&r2, t0 + 2u);
  startRow(&r3, t0 + 3u);
  startRow(&r4, t0 + 4u);
  startRow(&r5, t0 + 5u);
  startRow(&r6, t0 + 6u);
  startRow(&r7, t0 + 7u);
}

fn writeRows(t0: u32) {
  writeRow(&r0, t0);
  writeRow(&r1, t0 + 1u);
  writeRow(&r2, t0 + 2u);
  writeRow(&r3, t0 + 3u);
  writeRow(&r4, t0 + 4u);
  writeRow(&r5, t0 + 5u);
  writeRow(&r6, t0 + 6u);
  writeRow(&r7, t0 + 7u);
}
