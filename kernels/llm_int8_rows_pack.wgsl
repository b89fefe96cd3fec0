// Pass 2 of 2 of LLM.int8's activation side for a few rows (after kernels/llm_int8_rows_scan.wgsl, same
// grid of column blocks — or after kernels/attention_decode_combine.wgsl with SCAN, which leaves the maxima
// and counts of one block a head, `sub` heads to one of our blocks): every workgroup reduces the blocks' row
// maxima to sca[t] itself (at most a few hundred values), then
//   q[t, k]     0 in an outlier column, else round_half_even(v[t, k] · (127 / sca[t])) (0 when sca = 0),
//               four to a u32 (byte j of word i = column 4i + j, the int8 weights' layout);
//   outliers    [count, then the outlier columns ascending]: this block's columns go after the earlier
//               blocks' (their counts summed here), so the list is the same every run;
//   xs[t]       sca[t] / 127 (written by block 0).
//
// Bindings: 1 values [≥T, K] f32 as vec4 (x itself in plain mode), 2 colbits [K/4] u32,
//   3 partial [blocks·8] f32, 4 count [blocks] u32, 5 q [≥T, K/4] u32, 6 xs [≥T] f32,
//   7 outliers [1 + K] u32.
// Params: t = T (1..8), k4 = K/4, blocks (of partial and count), sub (of those blocks to one of BC columns);
//   t1, v1, q1, xs1, o1, t2: more row groups (workgroup row y takes group y, as the scan pass's): the rows
//   of groups 1 and 2, and the strides from one group's values (vec4), q (words), xs and outlier list to the
//   next's; group y's scan arrays follow the groups' before it (colbits and count y·k4 on, partial 8·y·k4).
// Overrides: BC vec4 columns per block (as the scan pass).
// Grid: ceil(K/4 / BC) × groups (1–3) workgroups of 256. Features: none (pack4xI8 is core WGSL).
struct Params { t: u32, k4: u32, blocks: u32, sub: u32, t1: u32, v1: u32, q1: u32, xs1: u32, o1: u32,
                t2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> values: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> colbits: array<u32>;
@group(0) @binding(3) var<storage, read> partial: array<f32>;
@group(0) @binding(4) var<storage, read> count: array<u32>;
@group(0) @binding(5) var<storage, read_write> q: array<u32>;
@group(0) @binding(6) var<storage, read_write> xs: array<f32>;
@group(0) @binding(7) var<storage, read_write> outliers: array<u32>;

override BC: u32 = 32u;
const WG = 256u;

var<workgroup> mx: array<f32, WG>; // [8 rows][32]
var<workgroup> before: array<u32, WG>;
var<workgroup> scan: array<u32, WG>;
var<workgroup> rinv: array<f32, 8>;
var<workgroup> any_bits: atomic<u32>; // some column of the block is an outlier column (zeroed at launch)
var<workgroup> has_list: u32;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let y = wg.y;
  let nt = select(select(p.t, p.t1, y == 1u), p.t2, y == 2u);
  let vb = y * p.v1;
  let qb = y * p.q1;
  let xb = y * p.xs1;
  let ob = y * p.o1;
  let cb = y * p.k4;
  let t = li / 32u;
  let j = li % 32u;
  // Loads whose values wait for the reductions, issued first so their round trips overlap the reductions':
  // this block's column bits (thread li < BC: column li) and the thread's first value (its only one at
  // BC = 32) with its column's bits.
  let c0 = wg.x * BC + li;
  var bits = 0u;
  if (li < BC && c0 < p.k4) { bits = colbits[cb + c0]; }
  let cf = wg.x * BC + j;
  var v_first = vec4<f32>(0.0);
  var nib_first = 0u;
  if (t < nt && cf < p.k4) {
    v_first = values[vb + t * p.k4 + cf];
    nib_first = colbits[cb + cf];
  }
  if (bits != 0u) { atomicOr(&any_bits, 1u); }
  // Row maxima over all blocks: thread (t, j) takes blocks j, j + 32, …; then a tree of 32.
  var m = 0.0;
  for (var b = j; b < p.blocks; b += 32u) { m = max(m, partial[8u * (cb + b) + t]); }
  mx[li] = m;
  // Outlier columns of the blocks before this one, and of all blocks (block 0 writes the total).
  var n = 0u;
  var all = 0u;
  for (var b = li; b < p.blocks; b += WG) {
    let c = count[cb + b];
    all += c;
    if (b < wg.x * p.sub) { n += c; }
  }
  before[li] = n;
  scan[li] = all;
  workgroupBarrier();
  // One set of levels for both trees: the counts' from the first power of two holding the blocks (threads
  // past p.blocks hold zeros), the maxima's from 16.
  var top = 16u;
  while (top < p.blocks / 2u + p.blocks % 2u && top < WG / 2u) { top <<= 1u; }
  for (var st = top; st > 0u; st >>= 1u) {
    if (li < st) {
      before[li] += before[li + st];
      scan[li] += scan[li + st];
    }
    if (st < 32u && j < st) { mx[li] = max(mx[li], mx[li + st]); }
    workgroupBarrier();
  }
  if (j == 0u) {
    let sca = mx[li];
    rinv[t] = select(0.0, 127.0 / sca, sca > 0.0);
    if (wg.x == 0u && t < nt) { xs[xb + t] = sca / 127.0; }
  }
  let offset = ob + 1u + before[0];
  if (wg.x == 0u && li == 0u) { outliers[ob] = scan[0]; }
  if (li == 0u) { has_list = atomicLoad(&any_bits); }
  workgroupBarrier();

  // This block's list, when it has outlier columns (most blocks have none): an exclusive scan of each vec4
  // column's outlier count (BC ≤ 256 columns).
  if (workgroupUniformLoad(&has_list) != 0u) {
    let own = countOneBits(bits);
    scan[li] = own;
    workgroupBarrier();
    // Only the first BC threads hold columns, and their sums reach back at most BC − 1 places.
    for (var st = 1u; st < BC; st <<= 1u) {
      var add = 0u;
      if (li >= st) { add = scan[li - st]; }
      workgroupBarrier();
      scan[li] += add;
      workgroupBarrier();
    }
    var at = offset + scan[li] - own;
    for (var b = 0u; b < 4u; b++) {
      if (((bits >> b) & 1u) != 0u) {
        outliers[at] = 4u * c0 + b;
        at++;
      }
    }
  }

  if (t < nt) {
    let inv = rinv[t];
    for (var i = j; i < BC; i += 32u) {
      let c = wg.x * BC + i;
      if (c < p.k4) {
        var nib = nib_first;
        var v = v_first;
        if (i != j) {
          nib = colbits[cb + c];
          v = values[vb + t * p.k4 + c];
        }
        let out = vec4<bool>((nib & 1u) != 0u, (nib & 2u) != 0u, (nib & 4u) != 0u, (nib & 8u) != 0u);
        let r = clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0));
        q[qb + t * p.k4 + c] = pack4xI8(vec4<i32>(select(r, vec4<f32>(0.0), out)));
      }
    }
  }
}
