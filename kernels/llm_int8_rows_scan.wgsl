// Pass 1 of 2 of LLM.int8's activation side for a few rows (T ≤ 8: decode steps, short chunks; pass 2 is
// kernels/llm_int8_rows_pack.wgsl; what they compute is in src/ops/matvec_dp4a.ts). Each workgroup takes a
// block of BC vec4 columns of every row and produces, without waiting for any other workgroup:
//   v[t, k]          the row as the layer multiplies it: x or RMSNorm(x)·g (NORM),
//                    written to `values` (the pack pass and the matrix kernel's outlier columns read it);
//   colbits[c]       bit j: column 4c + j holds some |v| ≥ θ (an outlier column);
//   partial[b·8 + t] max |v[t, k]| below θ over the block's columns;
//   count[b]         outlier columns in the block (the pack pass places each block's list after the
//                    earlier blocks', so the list comes out in column order, the same every run).
// NORM needs each row's Σx² over all K: every workgroup sums it itself (8 rows of K floats from L2, as the
// norm-fused weight-only matvec does) rather than wait for another pass — or, when the matrix kernel that
// wrote x left its workgroups' sums (kernels/matvec_dp4a.wgsl, SQ), adds those few hundred partials
// (NORM_SUMS): at 8 rows the full sum was ~16 dependent round trips to L2 a workgroup.
// Threads: 256 = 8 rows × 32 columns; thread (t = li / 32, j = li % 32) takes vec4 columns j, j + 32, …
// of the block (BC/32 of them).
// Two or three row groups at once (a step's groups quantized apart, src/ops/matvec_dp4a.ts
// `llmInt8RowsGroups`): workgroup row y takes group y — its t1 (y = 1) or t2 (y = 2) rows from vec4 y·x1 of x,
// its values from vec4 y·v1, its Σx² parts (parts, or parts2 for y = 2) from y·s1 of squares, and colbits,
// count and partial after the groups' before it (y·k4, y·k4 and 8·y·k4 on), each group's own scan.
//
// Bindings: 1 x [T, K] f32 as vec4, 2 g [K] f32 as vec4 (NORM; any buffer otherwise),
//   3 values [≥T, K] f32 as vec4, 4 colbits [K/4] u32, 5 partial [blocks·8] f32, 6 count [blocks] u32,
//   7 squares [8, stride] f32: row t's Σx² in parts (NORM_SUMS; any buffer otherwise).
// Params: t = T (1..8), k4 = K/4, eps (NORM), threshold θ (> 0), parts and stride of squares (NORM_SUMS);
//   t1, x1, v1, s1, t2, parts2: the other groups' rows and strides (above), unused without them.
// Overrides: MODE 0 plain, 1 NORM, 2 NORM_SUMS; BC vec4 columns per block (a multiple of 32).
// Grid: ceil(K/4 / BC) × groups (1–3) workgroups of 256. Features: none.
struct Params { t: u32, k4: u32, eps: f32, threshold: f32, parts: u32, stride: u32,
                t1: u32, x1: u32, v1: u32, s1: u32, t2: u32, parts2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> values: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> colbits: array<u32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> count: array<u32>;
@group(0) @binding(7) var<storage, read> squares: array<f32>;

override MODE: u32 = 0u;
override BC: u32 = 32u;
const WG = 256u;

var<workgroup> red: array<f32, WG>;
var<workgroup> sq: array<f32, 2048>; // NORM: [8 rows][256 threads] shares of Σx²
var<workgroup> bits: array<atomic<u32>, BC>;
var<workgroup> rnorm: array<f32, 8>;
var<workgroup> cnt: array<u32, 32>; // the block's outlier columns, by thread
// This workgroup's group: its rows, and where its x rows, values, Σx² parts and scan arrays start.
var<private> nt: u32;
var<private> xb: u32;
var<private> vb: u32;
var<private> cb: u32;

// x[t, c] and g[c] (NORM) from memory, or the column every thread loads before the norm (`first`).
struct Column { x: vec4<f32>, g: vec4<f32> }

fn column(t: u32, c: u32) -> Column {
  var r = Column(x[xb + t * p.k4 + c], vec4<f32>(0.0));
  if (MODE != 0u) { r.g = g[c]; }
  return r;
}

fn value(t: u32, a: Column) -> vec4<f32> {
  if (MODE != 0u) { return a.x * rnorm[t] * a.g; }
  return a.x;
}

// Σx² of vec4 columns c, c + WG, c + 2·WG, c + 3·WG of the row at `row` (zeros past the row).
fn squares4(row: u32, c: u32) -> vec4<f32> {
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  var d = vec4<f32>(0.0);
  var e = vec4<f32>(0.0);
  if (c < p.k4) { a = x[row + c]; }
  if (c + WG < p.k4) { b = x[row + c + WG]; }
  if (c + 2u * WG < p.k4) { d = x[row + c + 2u * WG]; }
  if (c + 3u * WG < p.k4) { e = x[row + c + 3u * WG]; }
  return vec4<f32>(dot(a, a), dot(b, b), dot(d, d), dot(e, e));
}

// Part i of the Σx² parts from `row` of squares, 0 past the row's parts.
fn part_of(row: u32, i: u32, parts: u32) -> f32 {
  if (i < parts) { return squares[row + i]; }
  return 0.0;
}

// rnorm of row li / 32 from its 32 threads' shares of Σx² (a tree of 32).
fn set_norms(li: u32, share: f32) {
  let rt = li / 32u;
  let rj = li % 32u;
  red[li] = share;
  workgroupBarrier();
  for (var st = 16u; st > 0u; st >>= 1u) {
    if (rj < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  if (rj == 0u && rt < nt) { rnorm[rt] = inverseSqrt(red[li] / f32(4u * p.k4) + p.eps); }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let y = wg.y;
  nt = select(select(p.t, p.t1, y == 1u), p.t2, y == 2u);
  let parts = select(p.parts, p.parts2, y == 2u);
  xb = y * p.x1;
  vb = y * p.v1;
  cb = y * p.k4;
  let sb = y * p.s1;
  for (var i = li; i < BC; i += WG) { atomicStore(&bits[i], 0u); }
  let t = li / 32u;
  let j = li % 32u;
  // The thread's first column (its only one at BC = 32) is loaded before the norm's sums, so its round
  // trip overlaps theirs.
  var first = Column(vec4<f32>(0.0), vec4<f32>(0.0));
  if (t < nt && wg.x * BC + j < p.k4) { first = column(t, wg.x * BC + j); }
  if (MODE == 1u) {
    // Σx² of every row by all 256 threads, eight independent loads in flight per thread (a row of
    // K ≤ 8192 in one round trip; rows of 4 or more take MODE 2 in the model).
    for (var rt = 0u; rt < nt; rt++) {
      let row = xb + rt * p.k4;
      var s = vec4<f32>(0.0);
      var u = vec4<f32>(0.0);
      for (var c = li; c < p.k4; c += 8u * WG) {
        s += squares4(row, c);
        u += squares4(row, c + 4u * WG);
      }
      sq[rt * WG + li] = (s.x + s.y) + (s.z + s.w) + ((u.x + u.y) + (u.z + u.w));
    }
    workgroupBarrier();
    // Row t's 256 shares by its 32 threads (t = li / 32), 8 each, then a tree of 32: a thread touches
    // ~25 values of workgroup memory, where one tree over 256 for all rows at once took 8 levels × T rows.
    var a = 0.0;
    if (t < nt) {
      for (var i = j; i < WG; i += 32u) { a += sq[t * WG + i]; }
    }
    set_norms(li, a);
  }
  if (MODE == 2u) {
    // Row t's parts by its 32 threads, twelve loads in flight: the model's products leave 384 parts a row
    // (16 rows a workgroup), one round trip to L2 instead of three.
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    var c = vec4<f32>(0.0);
    if (t < nt) {
      let row = sb + t * p.stride;
      for (var i = j; i < parts; i += 384u) {
        a += vec4<f32>(part_of(row, i, parts), part_of(row, i + 32u, parts), part_of(row, i + 64u, parts),
                       part_of(row, i + 96u, parts));
        b += vec4<f32>(part_of(row, i + 128u, parts), part_of(row, i + 160u, parts),
                       part_of(row, i + 192u, parts), part_of(row, i + 224u, parts));
        c += vec4<f32>(part_of(row, i + 256u, parts), part_of(row, i + 288u, parts),
                       part_of(row, i + 320u, parts), part_of(row, i + 352u, parts));
      }
    }
    set_norms(li, dot(a + b + c, vec4<f32>(1.0)));
  }
  workgroupBarrier();

  let th = vec4<f32>(p.threshold);
  var m = 0.0;
  if (t < nt) {
    for (var i = j; i < BC; i += 32u) {
      let c = wg.x * BC + i;
      if (c < p.k4) {
        var a = first;
        if (i != j) { a = column(t, c); }
        let v = value(t, a);
        if (MODE != 0u) { values[vb + t * p.k4 + c] = v; }
        let mag = abs(v);
        let big = mag >= th;
        let keep = select(mag, vec4<f32>(0.0), big);
        m = max(m, max(max(keep.x, keep.y), max(keep.z, keep.w)));
        if (any(big)) {
          atomicOr(&bits[i], select(0u, 1u, big.x) | select(0u, 2u, big.y) | select(0u, 4u, big.z) |
            select(0u, 8u, big.w));
        }
      }
    }
  }
  red[li] = m;
  workgroupBarrier(); // the block's bits are final too
  // The block's column bits and how many columns they flag, by the first 32 threads (columns li, li + 32,
  // …), so one tree of 32 serves the counts and every row's maximum (rows are the 32-thread groups of red).
  var n = 0u;
  if (li < 32u) {
    for (var i = li; i < BC; i += 32u) {
      let c = wg.x * BC + i;
      let b = atomicLoad(&bits[i]);
      if (c < p.k4) { colbits[cb + c] = b; }
      n += countOneBits(b);
    }
    cnt[li] = n;
  }
  workgroupBarrier();
  for (var st = 16u; st > 0u; st >>= 1u) {
    if (j < st) { red[li] = max(red[li], red[li + st]); }
    if (li < st) { cnt[li] += cnt[li + st]; }
    workgroupBarrier();
  }
  if (t < 8u && j == 0u) { partial[8u * (cb + wg.x) + t] = red[li]; }
  if (li == 0u) { count[cb + wg.x] = cnt[0]; }
}
