// Decode-path int8 matrix-vector kernel (few tokens) behind linear, rmsNormLinear and gateUpSilu:
//   MODE 0 (linear):          out[t, n] (+)= s1[n] · Σ_k x[t, k]·W1[n, k] + bias[n]
//   MODE 1 (rmsNorm → linear): out[t, n]    = inv_t · s1[n] · Σ_k (x[t, k]·g[k])·W1[n, k] + bias[n]
//   MODE 2 (norm, W1 and W3, silu·up): out[t, n] = silu(a)·b, a = inv_t·s1[n]·Σ_k (x·g)·W1[n, k],
//                                      b = the same with W3, s3;  inv_t = rsqrt(mean_k x[t, k]² + eps)
// Bandwidth bound. LANES threads share a row along K; lane l takes words l, l+LANES, … so each weight load
// instruction of a warp reads LANES·4 contiguous bytes per row and its x reads are one contiguous run.
// Each thread streams R output rows (2R weight rows in MODE 2, W1 and W3): one x (and g) load then feeds
// every row's word, dividing the x cache traffic per weight byte by R (at T tokens one weight word pulls
// T·16 bytes of x through L1, the limit of the one-row scheme at T = 8), and U·R weight loads per lane are
// issued before any math. R, LANES and U come from scripts/bench_matvec.ts on an H100 (see
// src/ops/matvec_i8.ts). Accumulators and loaded words are named fields guarded by constants (an array
// indexed by a loop variable may go to local memory).
// Reduction: each thread writes its partial sums to workgroup memory, [row group][value][lane] with a
// padded lane stride (no bank conflicts), and one thread per (row, token) sums the LANES partials; two
// tokens per round keep it at 18 KiB (llvmpipe allows 32).
//
// Bindings: 1 x    [T, K] f32 viewed as vec4 (K % 4 == 0)
//           2 g    [K] f32 viewed as vec4 (RMSNorm weight; MODE ≥ 1, any buffer otherwise)
//           3 w1   [N, K] i8x4 (K/4 words per row)
//           4 s1   [N] f32 (SCB/127)
//           5 w3   [N, K] i8x4 (MODE 2; otherwise the w1 buffer again: rows 4R..8R of R = 8 come from it)
//           6 s3   [N] f32 (MODE 2; any buffer otherwise)
//           7 bias [N] f32 (read only when has_bias)
//           8 out  [T, N] f32 (not x)
// Params:   n = N, k4 = K/4, eps (f32), has_bias, groups_per_row, accumulate (MODE 0: out += result),
//           total_groups = row blocks, grid_groups = persistent workgroups (0: one block per workgroup)
// Overrides: MODE, TT = T (1..8), R ∈ {1, 2, 4, 8} (8 only in MODE < 2), LANES ∈ {8, 16, …, 256}
//            (above 32 several warps share a row: fewer rows per workgroup, more workgroups for small N),
//            U ∈ {1, 2, 4, 8}, I2F (unpack4xI8 + int→float instead of i8x4_halves: benchmarks, and
//            tests/kernels/matvec_i8_test.ts's exact reference), BIASED (TT = 1: the weights widen to
//            (b + 128)·2⁻²⁴, i8x4_biased, and each word's chain of multiply-adds starts from −I8_BIAS·Σx
//            of the word, shared by the thread's rows; the sums are scaled by 2²⁴ at the end),
//            PROBE (benchmarks only, wrong results: 1 = every token's math on token 0's x, so one x load a
//            word; 2 = every token's x loaded but summed, so one token's math; 3 = no weight loads,
//            words made from their index), DOT_ADD (benchmarks only: dot product + add per row and word).
// Grid:     ceil(N / (R·256/LANES)) = total_groups workgroups of 256, folded into 2-D as
//           (wg.y * groups_per_row + wg.x); or grid_groups persistent ones looping over the row blocks.
// Features: none (int8 widened by kernels/int8.wgsl, no unpack4xI8; no subgroups).
// The code shared with kernels/matvec_i8_vec.wgsl (16-byte weight loads) is in kernels/matvec_i8_core.wgsl;
// this file holds the loop over the weights one word a lane at a time.

// #include int8
// #include matvec_i8_core

@group(0) @binding(3) var<storage, read> w1: array<u32>;
@group(0) @binding(5) var<storage, read> w3: array<u32>;

// Word q of every row of the thread; oa/ob = row offsets (row · k4) of the lo/hi rows.
fn load(q: u32, oa: vec4<u32>, ob: vec4<u32>) -> Words {
  var r = Words();
  if (PROBE == 3u) {
    // No weight traffic: words made from the index (the same math on them).
    let h = (q + oa.x) * 2654435761u;
    return Words(vec4<u32>(h, h ^ 0x5a5a5a5au, h + 7u, h * 3u), vec4<u32>(h ^ 1u, h + 9u, h * 5u, ~h));
  }
  r.a.x = w1[oa.x + q];
  if (nlo() > 1u) { r.a.y = w1[oa.y + q]; }
  if (nlo() > 2u) {
    r.a.z = w1[oa.z + q];
    r.a.w = w1[oa.w + q];
  }
  if (nhi() > 0u) { r.b.x = w3[ob.x + q]; }
  if (nhi() > 1u) { r.b.y = w3[ob.y + q]; }
  if (nhi() > 2u) {
    r.b.z = w3[ob.z + q];
    r.b.w = w3[ob.w + q];
  }
  return r;
}

// U word sets of the thread's rows: words q, q + LANES, …, q + (U−1)·LANES, all requested before any math.
struct Block { w0: Words, w1: Words, w2: Words, w3: Words, w4: Words, w5: Words, w6: Words, w7: Words }

fn load_block(q: u32, oa: vec4<u32>, ob: vec4<u32>) -> Block {
  var b = Block();
  b.w0 = load(q, oa, ob);
  if (U > 1u) { b.w1 = load(q + LANES, oa, ob); }
  if (U > 2u) {
    b.w2 = load(q + 2u * LANES, oa, ob);
    b.w3 = load(q + 3u * LANES, oa, ob);
  }
  if (U > 4u) {
    b.w4 = load(q + 4u * LANES, oa, ob);
    b.w5 = load(q + 5u * LANES, oa, ob);
    b.w6 = load(q + 6u * LANES, oa, ob);
    b.w7 = load(q + 7u * LANES, oa, ob);
  }
  return b;
}

fn accumulate_block(acc: ptr<function, Acc>, q: u32, b: Block) {
  accumulate(acc, q, b.w0);
  if (U > 1u) { accumulate(acc, q + LANES, b.w1); }
  if (U > 2u) {
    accumulate(acc, q + 2u * LANES, b.w2);
    accumulate(acc, q + 3u * LANES, b.w3);
  }
  if (U > 4u) {
    accumulate(acc, q + 4u * LANES, b.w4);
    accumulate(acc, q + 5u * LANES, b.w5);
    accumulate(acc, q + 6u * LANES, b.w6);
    accumulate(acc, q + 7u * LANES, b.w7);
  }
}

// The loop over the weights: U word sets of the thread's rows in flight, then the words left one at a time.
fn weight_loop(lane: u32, oa: vec4<u32>, ob: vec4<u32>) -> Acc {
  var acc = Acc();
  var q = lane;
  for (; q + (U - 1u) * LANES < p.k4; q += U * LANES) {
    accumulate_block(&acc, q, load_block(q, oa, ob));
  }
  for (; q < p.k4; q += LANES) {
    accumulate(&acc, q, load(q, oa, ob));
  }
  return acc;
}
