// Causal grouped-query attention of a prompt chunk over the KV cache for CPU adapters (Mesa's llvmpipe): the
// contract of attention_prefill.wgsl (read its header) in the form of attention_full_rows.wgsl (read its
// header for why: llvmpipe loads lane by lane, so each loaded K/V row must serve many FMAs, and barriers
// cost a switch of vectors). Each invocation owns 8 consecutive tokens of one query head, held in private
// variables; it streams the keys 0 … start_pos + its last token one by one, each K and V row loaded once for
// its 8 rows. Query t (cache position start_pos + t) takes key j when j ≤ start_pos + t and key_valid[j] is
// 1; a key with key_valid 0 is never read, and a row skips keys past its own position, so padding or
// not-yet-written rows cannot reach its output. Rows that see no valid key come out as zeros.
// At the tiny model's 1800-token prompt (4 heads of 16, `deno task bench --tiny --sections prefill`) on one
// llvmpipe thread: 0.24 s a layer, against 2.24 s in attention_prefill's tiles.
//
// Bindings: 1 q [B·T, H·Dh] f32 (RoPE applied), 2 k_cache [B, S, Hkv·Dh], 3 v_cache [B, S, Hkv·Dh] (f32, or
//   bf16x2 in the variant `attention_prefill_rows+kv_bf16`), 4 key_valid [B, S] i32 (0 = padding),
//   5 out [B·T, H·Dh] f32. q, caches and out are read as vec4: Dh % 4 == 0, Dh ≤ 64.
// Params: attention_prefill's (heads_per_tile unread).
// Overrides: D4 = Dh / 4 (must match head_dim).
// Grid: (ceil(T / 64), H, B) workgroups of 8 invocations; invocation li owns tokens 64·x + 8·li … + 7.
// Features: none.
struct Params {
  tokens: u32,
  num_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  seq: u32,
  start_pos: u32,
  heads_per_tile: u32,
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k_cache: array<KvVec4>;
@group(0) @binding(3) var<storage, read> v_cache: array<KvVec4>;
@group(0) @binding(4) var<storage, read> key_valid: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;

// #include kv_f32

override D4: u32 = 4u;
const ROWS = 8u; // tokens an invocation owns
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
var<private> qstride: u32; // vec4s per q/out row (H·Dh/4)
var<private> q0: u32; // vec4 index of (sample b, token 0, head h) in q and out

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

// Online softmax over the keys the row sees (`sees`: the key is at or before its position).
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

fn writeRow(row: ptr<private, Row>, t: u32) {
  if (t >= tok) { return; }
  let at = q0 + t * qstride;
  let inv = select(0.0, 1.0 / (*row).l, (*row).l > 0.0); // no valid key: zeros
  for (var c = 0u; c < D4; c++) { out[at + c] = (*row).acc[c] * inv; }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  tok = p.tokens;
  let S = p.seq;
  let h = wg.y;
  let b = wg.z;
  qstride = p.num_heads * D4;
  q0 = b * tok * qstride + h * D4;
  let kstride = p.num_kv_heads * D4;
  let kvh = h / (p.num_heads / p.num_kv_heads);
  let kv0 = b * S * kstride + kvh * D4;
  let t0 = (wg.x * WG + li) * ROWS;
  if (t0 >= tok) { return; } // no barrier below: an invocation past T may leave alone
  startRow(&r0, t0);
  startRow(&r1, t0 + 1u);
  startRow(&r2, t0 + 2u);
  startRow(&r3, t0 + 3u);
  startRow(&r4, t0 + 4u);
  startRow(&r5, t0 + 5u);
  startRow(&r6, t0 + 6u);
  startRow(&r7, t0 + 7u);
  let pos0 = p.start_pos + t0; // cache position of row 0; row i sits at pos0 + i
  let keys = p.start_pos + min(t0 + ROWS, tok); // keys 0 … the last real row's position
  for (var j = 0u; j < keys; j++) {
    if (key_valid[b * S + j] == 0) { continue; }
    let at = kv0 + j * kstride;
    for (var c = 0u; c < D4; c++) {
      kk[c] = kv_widen4(k_cache[at + c]);
      vv[c] = kv_widen4(v_cache[at + c]);
    }
    acceptKey(&r0, j <= pos0);
    acceptKey(&r1, j <= pos0 + 1u);
    acceptKey(&r2, j <= pos0 + 2u);
    acceptKey(&r3, j <= pos0 + 3u);
    acceptKey(&r4, j <= pos0 + 4u);
    acceptKey(&r5, j <= pos0 + 5u);
    acceptKey(&r6, j <= pos0 + 6u);
    acceptKey(&r7, j <= pos0 + 7u);
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
