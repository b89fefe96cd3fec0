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

// #include query_rows

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
  startRows(t0);
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
  writeRows(t0);
}
