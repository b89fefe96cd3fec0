// Sampling of one token per row with HF's warper order temperature → top-k → top-p, on the GPU without
// a sort. Scaled logits s = x · (1/temperature); key(s) is an order-preserving u32 of the float.
//  1. m = max s.
//  2. top-k (0 < top_k < V): the largest key K_k with #{key(s) ≥ K_k} ≥ top_k, found two bits a pass (16
//     counting passes + workgroup reductions) = the key of the k-th largest s; ties with it are kept, as in
//     HF's `scores < topk(...)[-1]` filter.
//  3. Z = Σ_{key ≥ K_k} e^(s−m).
//  4. top-p (top_p < 1): the largest key K_p with Σ_{key ≥ max(K_p, K_k)} e^(s−m) ≥ top_p·Z, again two bits a pass:
//     keeps the smallest set of most likely tokens whose probability reaches top_p (ties at the border are
//     all kept), clamped to the key of m so at least the best token survives.
//  5. Draw by Gumbel-max: argmax over kept tokens of s + G(u), G(u) = −log(−log u), with u from a
//     counter-based PCG hash of (seed, step, row, token) — the same draw as sampling from the renormalised
//     distribution, with no prefix sum, and the same ids for a given seed on any device. With per-row seeds
//     (rows that are separate requests batched together) row b hashes (seed_b, step + offset_b, 0, token):
//     the draw that row would get alone as row 0 at its own step (offset_b: the steps it made before it
//     joined this batch).
// Bindings: 1 logits [B, V] f32, 2 out [B] i32, 3 row_seeds [B, 2] u32: (seed, step offset) per row (read
//   only when per_row_seeds).
// Params: vocab V, rows B, row_stride_groups, top_k (0 = off), seed, step, inv_temp (f32), top_p (f32),
//   per_row_seeds.
// Grid: flatGrid(B, 1): one workgroup of 1024 threads per row. Features: none.
struct Params {
  vocab: u32,
  rows: u32,
  row_stride_groups: u32,
  top_k: u32,
  seed: u32,
  step: u32,
  inv_temp: f32,
  top_p: f32,
  per_row_seeds: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
@group(0) @binding(3) var<storage, read> row_seeds: array<u32>;

const WG = 1024u; // threads per row: each pass over V is latency-bound, so more threads = fewer trips

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> red4: array<vec4<f32>, WG>; // three counts or masses a pass (the searches below)

// PCG-RXS-M-XS hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Order-preserving map f32 → u32 (negative floats reversed below positive ones).
fn key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// A thread visits tokens li, li + WG, …; the passes read them eight visits a round with independent loads
// (a pass is then ~12 round trips to L2 at V = 92553, not 91) and combine them in visit order, so every
// sum, count and tie is the one a plain loop would give.
struct Eight { s0: f32, s1: f32, s2: f32, s3: f32, s4: f32, s5: f32, s6: f32, s7: f32 }

// Scaled logit of token i.
fn sl(base: u32, i: u32) -> f32 {
  return logits[base + i] * p.inv_temp;
}

fn eight(base: u32, i: u32) -> Eight {
  return Eight(sl(base, i), sl(base, i + WG), sl(base, i + 2u * WG), sl(base, i + 3u * WG),
               sl(base, i + 4u * WG), sl(base, i + 5u * WG), sl(base, i + 6u * WG), sl(base, i + 7u * WG));
}

fn max8(e: Eight) -> f32 {
  return max(max(max(e.s0, e.s1), max(e.s2, e.s3)), max(max(e.s4, e.s5), max(e.s6, e.s7)));
}

fn at_least(s: f32, cand: u32) -> u32 {
  return select(0u, 1u, key(s) >= cand);
}

fn count8(e: Eight, cand: u32) -> u32 {
  return (at_least(e.s0, cand) + at_least(e.s1, cand)) + (at_least(e.s2, cand) + at_least(e.s3, cand)) +
    (at_least(e.s4, cand) + at_least(e.s5, cand)) + (at_least(e.s6, cand) + at_least(e.s7, cand));
}

// Gumbel-max candidate: token i (visited in increasing order) replaces the thread's best when it is kept
// and scores higher (strict >: the lowest index wins a tie; best_i = vocab means none yet).
struct Best { score: f32, i: u32 }

fn draw1(b: Best, s: f32, i: u32, k_min: u32, row_hash: u32) -> Best {
  if (key(s) < k_min) { return b; }
  let u = (f32(pcg(i + row_hash) >> 8u) + 0.5) * (1.0 / 16777216.0); // in (0, 1)
  let score = s - log(-log(u));
  if (b.i == p.vocab || score > b.score) { return Best(score, i); }
  return b;
}

fn draw8(b: Best, e: Eight, i: u32, k_min: u32, h: u32) -> Best {
  var r = draw1(b, e.s0, i, k_min, h);
  r = draw1(r, e.s1, i + WG, k_min, h);
  r = draw1(r, e.s2, i + 2u * WG, k_min, h);
  r = draw1(r, e.s3, i + 3u * WG, k_min, h);
  r = draw1(r, e.s4, i + 4u * WG, k_min, h);
  r = draw1(r, e.s5, i + 5u * WG, k_min, h);
  r = draw1(r, e.s6, i + 6u * WG, k_min, h);
  return draw1(r, e.s7, i + 7u * WG, k_min, h);
}

// The two searches take two bits a pass: the three candidates c | 1·2^sh, c | 2·2^sh, c | 3·2^sh are counted
// (or their masses summed) together and the largest that passes is kept. Both tests are monotone in the
// candidate (a larger key keeps a subset, and a float sum of a subset in the same order is not larger), so
// this picks what one bit a pass would, with half the passes over the logits.
fn cands(c: u32, sh: u32) -> vec3<u32> {
  return vec3<u32>(c) | (vec3<u32>(1u, 2u, 3u) << vec3<u32>(sh));
}

// Whether key(s) reaches each candidate, as counts (f32: exact below 2^24 tokens).
fn count3(s: f32, c: vec3<u32>) -> vec3<f32> {
  return select(vec3<f32>(0.0), vec3<f32>(1.0), vec3<u32>(key(s)) >= c);
}

fn count3_8(e: Eight, c: vec3<u32>) -> vec3<f32> {
  return ((count3(e.s0, c) + count3(e.s1, c)) + (count3(e.s2, c) + count3(e.s3, c))) +
    ((count3(e.s4, c) + count3(e.s5, c)) + (count3(e.s6, c) + count3(e.s7, c)));
}

// acc + e^(s−m) for each of three lower bounds that key(s) reaches (adding 0 leaves a sum as it was).
fn mass3(acc: vec3<f32>, s: f32, lo: vec3<u32>, m: f32) -> vec3<f32> {
  return acc + select(vec3<f32>(0.0), vec3<f32>(exp(s - m)), vec3<u32>(key(s)) >= lo);
}

fn mass3_8(acc: vec3<f32>, e: Eight, lo: vec3<u32>, m: f32) -> vec3<f32> {
  var a = mass3(acc, e.s0, lo, m);
  a = mass3(a, e.s1, lo, m);
  a = mass3(a, e.s2, lo, m);
  a = mass3(a, e.s3, lo, m);
  a = mass3(a, e.s4, lo, m);
  a = mass3(a, e.s5, lo, m);
  a = mass3(a, e.s6, lo, m);
  return mass3(a, e.s7, lo, m);
}

// The largest candidate whose total reaches `need`, else `keep`.
fn pick3(c: vec3<u32>, total: vec4<f32>, need: f32, keep: u32) -> u32 {
  if (total.z >= need) { return c.z; }
  if (total.y >= need) { return c.y; }
  if (total.x >= need) { return c.x; }
  return keep;
}

fn reduce_max(v: f32, li: u32) -> f32 {
  red_f[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red_f[li] = max(red_f[li], red_f[li + s]); }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(v: f32, li: u32) -> f32 {
  red_f[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red_f[li] += red_f[li + s]; }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}

// reduce_sum's tree on four values at once (each component summed in the same order).
fn reduce_sum4(v: vec4<f32>, li: u32) -> vec4<f32> {
  red4[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red4[li] += red4[li + s]; }
    workgroupBarrier();
  }
  let r = red4[0];
  workgroupBarrier();
  return r;
}

// Σ e^(s−m) over tokens with key(s) ≥ lo. One function for Z and the top-p search, so the two sums of
// the same set are bitwise equal.
// This thread's Σ e^(s−m) over its tokens with key(s) ≥ lo, for three bounds. Z and the top-p search both
// come from here and the same tree, so the sums of one set are bitwise equal.
fn masses(base: u32, lo: vec3<u32>, m: f32, li: u32) -> vec3<f32> {
  var acc = vec3<f32>(0.0);
  var i = li;
  for (; i + 7u * WG < p.vocab; i += 8u * WG) { acc = mass3_8(acc, eight(base, i), lo, m); }
  for (; i < p.vocab; i += WG) { acc = mass3(acc, sl(base, i), lo, m); }
  return acc;
}

// This thread's count of tokens with key(s) ≥ c, for three candidates.
fn counts(base: u32, c: vec3<u32>, li: u32) -> vec3<f32> {
  var n = vec3<f32>(0.0);
  var i = li;
  for (; i + 7u * WG < p.vocab; i += 8u * WG) { n += count3_8(eight(base, i), c); }
  for (; i < p.vocab; i += WG) { n += count3(sl(base, i), c); }
  return n;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.y * p.row_stride_groups + wg.x;
  let V = p.vocab;
  let base = min(row, p.rows - 1u) * V;

  var m = -3.4e38;
  var i = li;
  for (; i + 7u * WG < V; i += 8u * WG) { m = max(m, max8(eight(base, i))); }
  for (; i < V; i += WG) { m = max(m, sl(base, i)); }
  m = reduce_max(m, li);

  var k_min = 0u; // keep tokens with key(s) ≥ k_min
  if (p.top_k > 0u && p.top_k < V) {
    for (var step = 0u; step < 16u; step++) {
      let c = cands(k_min, 30u - 2u * step);
      k_min = pick3(c, reduce_sum4(vec4<f32>(counts(base, c, li), 0.0), li), f32(p.top_k), k_min);
    }
  }

  if (p.top_p < 1.0) {
    let goal = p.top_p * reduce_sum(masses(base, vec3<u32>(k_min), m, li).x, li);
    var ans = 0u;
    for (var step = 0u; step < 16u; step++) {
      let c = cands(ans, 30u - 2u * step);
      let lo = max(c, vec3<u32>(k_min));
      ans = pick3(c, reduce_sum4(vec4<f32>(masses(base, lo, m, li), 0.0), li), goal, ans);
    }
    k_min = min(max(ans, k_min), key(m));
  }

  var row_key = row;
  var seed = p.seed;
  var step = p.step;
  if (p.per_row_seeds != 0u) {
    row_key = 0u;
    let at = 2u * min(row, p.rows - 1u);
    seed = row_seeds[at];
    step += row_seeds[at + 1u];
  }
  let row_hash = pcg(row_key + pcg(step + pcg(seed)));
  var b = Best(-3.4e38, V);
  var j = li;
  for (; j + 7u * WG < V; j += 8u * WG) { b = draw8(b, eight(base, j), j, k_min, row_hash); }
  for (; j < V; j += WG) { b = draw1(b, sl(base, j), j, k_min, row_hash); }
  red_f[li] = b.score;
  red_u[li] = b.i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      let ov = red_f[li + s];
      let oi = red_u[li + s];
      let mi = red_u[li];
      if (oi != V && (mi == V || ov > red_f[li] || (ov == red_f[li] && oi < mi))) {
        red_f[li] = ov;
        red_u[li] = oi;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u && row < p.rows) { out[row] = i32(red_u[0]); }
}
