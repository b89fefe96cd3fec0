// Experiment (scripts/bench_grid_chain.ts, PERF.md v51), not used by the model: the int8 products of a decode
// step (wqkv, wo, gate·up, w2 of every layer, weight-only numerics, one token) run by persistent workgroups,
// either one product a dispatch (SYNC = 0, as the model runs them) or all of them in ONE dispatch with a
// grid-wide barrier between products (SYNC = 1). The question it answers: what a dispatch boundary costs a
// product beyond the stream (the model's products fit ~5.4 µs + bytes at ~95 % of copy, PERF.md v38), and so
// whether a step of one dispatch would reach the ≤ 8 ms / ≤ 150 dispatches targets.
//
// WGSL promises nothing about workgroups waiting for each other: the barrier is sound only when every
// workgroup of the grid is resident at once (on an H100 at most two of these share a multiprocessor: a grid
// of 264 held, 396 did not), and a bounded spin turns a grid that is not into a flag (`fault`) instead of a
// hang. Visibility: each output is written once per dispatch into an activation region no workgroup has read
// before in that dispatch, and `storageBarrier()` is, in naga's SPIR-V, a control barrier with device-scope
// acquire/release on storage memory. The script and the test check every output bit for bit against SYNC = 0
// and count the arrivals (llvmpipe did not hold the barrier over a grid of 3).
//
// Product p (p_begin ≤ p < p_end) is kind p mod 4 of layer p / 4 (every layer reuses one layer's weights:
// 390 MB between reuses, far past the 50 MB L2, so each product streams from memory as in the model):
//   0 wqkv [qkv, h] on RMS-normalised x    1 wo [h, h] on the first h values of wqkv's output
//   2 gate·up [2·ff, h] on RMS-normalised x: silu(gate)·up, ff outputs    3 w2 [h, ff]
// It reads activation region p and writes region p + 1:
//   out[n] = scale[n] · inv · Σ_k x[k]·W[n, k]   (inv = 1/rms(x) for kinds 0 and 2, else 1)
// Threads: LANES lanes a row (lane l takes 16-byte chunks l, l + LANES, …; U chunks in flight), G = 256/LANES
// row groups, R rows a thread (row group g, slot i: row base + g + i·G; GLU: R/2 gate rows and their up rows,
// each x load serving all R). A workgroup-round is span = G·R distinct rows (G·R/2 with GLU): round j of
// workgroup w holds rows (j·nwg + w)·span …, so every workgroup has within one round of the same rows
// (DYN = 1: block b = rows b·span … goes to whichever workgroup's atomicAdd on the product's counter returned
// b, so a workgroup that streams faster takes more). One reduction a round, through workgroup memory.
//
// Bindings: 1 wqkv, 2 wo, 3 wgu (gate rows, then up rows), 4 w2: int8 rows as vec4<u32>; 5 scale [qkv + h +
//           2·ff + h] f32 in that order; 6 act [regions, 8192] vec4<f32> (32768 floats a region); 7 count
//           [2 + products] atomic u32, zero at the step's start: [0] the barrier's arrivals, [2 + p] product
//           p's tickets (DYN); 8 fault [2] atomic u32: [0] set when a spin gave up,
//           [1] the most workgroups a spin that gave up still waited for.
// Params:   p_begin, p_end, spin_limit, h, qkv, ff (h, ff multiples of 16; qkv ≥ h).
// Overrides: SYNC (0, 1), PF (1: the next product's first chunk of this thread's rows is loaded into registers
//           between the barrier's arrival and its wait; 2: that of its first two rows into workgroup memory;
//           3: as 1, its first two chunks (32 KB a workgroup at R4: about the stream's window in flight);
//           not with DYN), DYN (0, 1), NOMATH (0; timing only: 1, 2, 3), U (1, 2, 4), R (2, 4: gate·up takes half), LANES (a power of two,
//           8 … 256).
// Grid:     nwg workgroups of 256 (1-D).
// #include int8

struct Params { p_begin: u32, p_end: u32, spin_limit: u32, h: u32, qkv: u32, ff: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wqkv: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> wo: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> wgu: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> w2: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<storage, read_write> act: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> count: array<atomic<u32>>;
@group(0) @binding(8) var<storage, read_write> fault: array<atomic<u32>>;

override SYNC: u32 = 1u;
override PF: u32 = 0u;
override U: u32 = 2u;
override R: u32 = 4u; // rows a thread (GLU: R/2 gate rows and their up rows); 2 or 4
override LANES: u32 = 64u;
override DYN: u32 = 0u; // 1: a workgroup takes its next block from the product's ticket counter
// Timing only: 1 the weights streamed without the products (chunk_math), 2 flat, 3 as 1 without the norms.
override NOMATH: u32 = 0u;
const WG = 256u;
const REGION = 8192u; // vec4 a region

// red[((j mod 2)·4 + slot)·256 + li]: a thread's sums of round j, slot by slot (two rounds, so that one
// barrier a round separates a round's writes from the reads of the round two before).
var<workgroup> red: array<f32, 2048>;
var<workgroup> norm: array<f32, 256>;
var<workgroup> tickets: array<u32, 2>; // DYN: the block taken now and the next, by round parity
// PF = 2: the next product's first chunk of this thread's slots 0 and 1, pf[slot·256 + li]. 8 KB: at 25 KB a
// workgroup in all (33 KB, 41 KB too) the driver kept one workgroup a multiprocessor and a grid of 264 never
// met; at 9–21 KB two fit (H100).
var<workgroup> pf: array<vec4<u32>, 512>;

struct Shape { n: u32, k16: u32, glu: bool, normed: bool, scale_at: u32 }

fn shape_of(kind: u32) -> Shape {
  switch kind {
    case 0u: { return Shape(p.qkv, p.h / 16u, false, true, 0u); }
    case 1u: { return Shape(p.h, p.h / 16u, false, false, p.qkv); }
    case 2u: { return Shape(p.ff, p.h / 16u, true, true, p.qkv + p.h); }
    default: { return Shape(p.h, p.ff / 16u, false, false, p.qkv + p.h + 2u * p.ff); }
  }
}

// Distinct output rows a thread: R, or R/2 gate rows (each with its up row).
fn per(s: Shape) -> u32 {
  return select(R, R / 2u, s.glu);
}

fn wchunk(kind: u32, at: u32) -> vec4<u32> {
  switch kind {
    case 0u: { return wqkv[at]; }
    case 1u: { return wo[at]; }
    case 2u: { return wgu[at]; }
    default: { return w2[at]; }
  }
}

fn one(kind: u32, row: u32, c: u32, k16: u32) -> vec4<u32> {
  if (c >= k16) { return vec4<u32>(); }
  return wchunk(kind, row * k16 + c);
}

// Matrix row of slot i for the thread's first row n (rows n, n + G, …; GLU: slots ≥ R/2 the up rows).
fn slot_row(s: Shape, n: u32, i: u32) -> u32 {
  let G = WG / LANES;
  let d = per(s);
  let row = min(n + (i % d) * G, s.n - 1u);
  return select(row, row + s.n, s.glu && i >= d);
}

// Chunk c of the R slots' rows.
struct Chunk { a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, d: vec4<u32> }

fn load_chunk(kind: u32, s: Shape, n: u32, c: u32) -> Chunk {
  var r = Chunk();
  r.a = one(kind, slot_row(s, n, 0u), c, s.k16);
  if (R > 1u) { r.b = one(kind, slot_row(s, n, 1u), c, s.k16); }
  if (R > 2u) {
    r.c = one(kind, slot_row(s, n, 2u), c, s.k16);
    r.d = one(kind, slot_row(s, n, 3u), c, s.k16);
  }
  return r;
}

fn dot4w(x: vec4<f32>, w: u32) -> f32 {
  return dot(x, i8x4(w));
}

// The R slots' sums for one word of each (x the four values it multiplies): each x load serves every slot.
fn word_math(a: vec4<f32>, x: vec4<f32>, wa: u32, wb: u32, wc: u32, wd: u32) -> vec4<f32> {
  var r = a;
  r.x += dot4w(x, wa);
  if (R > 1u) { r.y += dot4w(x, wb); }
  if (R > 2u) {
    r.z += dot4w(x, wc);
    r.w += dot4w(x, wd);
  }
  return r;
}

// The R slots' sums over chunk c of x (region at x0). NOMATH (timing only, wrong results): no x loads and no
// products, the weight words folded into the sums (so that their loads stay), to time the stream alone.
fn chunk_math(acc: ptr<function, vec4<f32>>, x0: u32, c: u32, k16: u32, k: Chunk) {
  if (c >= k16) { return; }
  if (NOMATH == 1u || NOMATH == 3u) {
    let f = k.a ^ k.b ^ k.c ^ k.d;
    (*acc).x += bitcast<f32>((f.x ^ f.y ^ f.z ^ f.w) & 0x007FFFFFu);
    return;
  }
  let at = x0 + 4u * c;
  *acc = word_math(*acc, act[at], k.a.x, k.b.x, k.c.x, k.d.x);
  *acc = word_math(*acc, act[at + 1u], k.a.y, k.b.y, k.c.y, k.d.y);
  *acc = word_math(*acc, act[at + 2u], k.a.z, k.b.z, k.c.z, k.d.z);
  *acc = word_math(*acc, act[at + 3u], k.a.w, k.b.w, k.c.w, k.d.w);
}

fn silu(a: f32) -> f32 {
  return a / (1.0 + exp(-a));
}

// 1/rms of the K = 16·k16 values of region x0 (all threads; uniform control flow).
fn inv_rms(x0: u32, k16: u32, li: u32) -> f32 {
  var a = 0.0;
  for (var i = li; i < 4u * k16; i += WG) {
    let v = act[x0 + i];
    a += dot(v, v);
  }
  norm[li] = a;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st >>= 1u) {
    if (li < st) { norm[li] += norm[li + st]; }
    workgroupBarrier();
  }
  let r = inverseSqrt(norm[0] / f32(16u * k16) + 1e-6);
  workgroupBarrier(); // norm is reused by the next product
  return r;
}

// The grid-wide barrier, in two halves: this workgroup has finished the product (its outputs, before its
// arrival is counted) …
fn arrive(li: u32) {
  storageBarrier();
  if (li == 0u) { atomicAdd(&count[0], 1u); }
}

// … and every workgroup has finished product `done` (0-based within the dispatch).
fn wait_all(done: u32, nwg: u32, li: u32) {
  if (li == 0u) {
    let all = (done + 1u) * nwg;
    var spins = 0u;
    if (atomicLoad(&fault[0]) != 0u) { spins = p.spin_limit; } // a grid that failed once: no more waits
    loop {
      let seen = atomicLoad(&count[0]);
      if (seen >= all) { break; }
      spins++;
      if (spins >= p.spin_limit) {
        atomicStore(&fault[0], 1u);
        atomicMax(&fault[1], all - seen); // how many had not arrived
        break;
      }
    }
  }
  storageBarrier(); // the other workgroups' outputs, after thread 0 saw them all counted
}

// NOMATH = 2 (timing only, wrong results): the product's weights read as one flat array, 16 bytes a thread
// and U in flight, grid-stride, folded into a word written only for a value that does not occur — the
// stream's ceiling without rows, rounds or reductions.
fn flat_stream(kind: u32, s: Shape, wid: u32, nwg: u32, li: u32, y0: u32) {
  let rows = select(s.n, 2u * s.n, s.glu);
  let total = rows * s.k16;
  let stride = nwg * WG;
  var f = vec4<u32>();
  for (var i = wid * WG + li; i < total; i += U * stride) {
    f ^= wchunk(kind, i);
    if (U > 1u && i + stride < total) { f ^= wchunk(kind, i + stride); }
    if (U > 2u) {
      if (i + 2u * stride < total) { f ^= wchunk(kind, i + 2u * stride); }
      if (i + 3u * stride < total) { f ^= wchunk(kind, i + 3u * stride); }
    }
  }
  if ((f.x ^ f.y ^ f.z ^ f.w) == 0x9E3779B9u) { act[y0][0] = 1.0; }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let G = WG / LANES;
  let nwg = nw.x;
  let wid = wg.x;
  let lane = li % LANES;
  let grp = li / LANES;
  var pre = Chunk();
  var pre1 = Chunk(); // PF 3: the second chunk column
  var have_pre = false;
  for (var pi = p.p_begin; pi < p.p_end; pi++) {
    let kind = pi % 4u;
    let s = shape_of(kind);
    let x0 = pi * REGION;
    let y0 = (pi + 1u) * REGION;
    var inv = 1.0;
    if (s.normed && NOMATH != 2u && NOMATH != 3u) { inv = inv_rms(x0, s.k16, li); }
    let d = per(s);
    let span = G * d; // distinct rows a workgroup-round
    var blocks = (s.n + span - 1u) / span;
    if (NOMATH == 2u) {
      flat_stream(kind, s, wid, nwg, li, y0);
      blocks = 0u;
    }
    var blk = wid;
    if (DYN == 1u) {
      if (li == 0u) { tickets[0] = atomicAdd(&count[2u + pi], 1u); }
      blk = workgroupUniformLoad(&tickets[0]);
    }
    for (var j = 0u; blk < blocks; j++) {
      let base = blk * span;
      // DYN: the next block's ticket, asked for now so that its answer is back by the end of this one.
      if (DYN == 1u && li == 0u) { tickets[(j + 1u) % 2u] = atomicAdd(&count[2u + pi], 1u); }
      let n = base + grp;
      var acc = vec4<f32>();
      var c = lane;
      if ((PF == 1u || PF == 3u) && j == 0u && have_pre) {
        chunk_math(&acc, x0, c, s.k16, pre);
        c += LANES;
        if (PF == 3u) {
          chunk_math(&acc, x0, c, s.k16, pre1);
          c += LANES;
        }
      }
      if (PF == 2u && j == 0u && have_pre) {
        var k = Chunk(pf[li], pf[WG + li], vec4<u32>(), vec4<u32>());
        if (R > 2u) {
          k.c = one(kind, slot_row(s, n, 2u), c, s.k16);
          k.d = one(kind, slot_row(s, n, 3u), c, s.k16);
        }
        chunk_math(&acc, x0, c, s.k16, k);
        c += LANES;
      }
      for (; c < s.k16; c += U * LANES) {
        let k0 = load_chunk(kind, s, n, c);
        var k1 = Chunk();
        var k2 = Chunk();
        var k3 = Chunk();
        if (U > 1u) { k1 = load_chunk(kind, s, n, c + LANES); }
        if (U > 2u) {
          k2 = load_chunk(kind, s, n, c + 2u * LANES);
          k3 = load_chunk(kind, s, n, c + 3u * LANES);
        }
        chunk_math(&acc, x0, c, s.k16, k0);
        if (U > 1u) { chunk_math(&acc, x0, c + LANES, s.k16, k1); }
        if (U > 2u) {
          chunk_math(&acc, x0, c + 2u * LANES, s.k16, k2);
          chunk_math(&acc, x0, c + 3u * LANES, s.k16, k3);
        }
      }
      let buf = (j % 2u) * 4u;
      for (var i = 0u; i < R; i++) { red[(buf + i) * WG + li] = acc[i]; }
      workgroupBarrier();
      // Thread o < span: distinct row o of the round (row group o mod G, slot o / G), its LANES sums in order.
      if (li < span) {
        let g = li % G;
        let i = li / G;
        let row = base + li; // = base + g + i·G
        if (row < s.n) {
          var a = 0.0;
          var b = 0.0;
          for (var l = 0u; l < LANES; l++) {
            a += red[(buf + i) * WG + g * LANES + l];
            if (s.glu) { b += red[(buf + i + d) * WG + g * LANES + l]; }
          }
          var o = scale[s.scale_at + row] * inv * a;
          if (s.glu) { o = silu(o) * (scale[s.scale_at + s.n + row] * inv * b); }
          act[y0 + row / 4u][row % 4u] = o;
        }
      }
      if (DYN == 1u) {
        blk = workgroupUniformLoad(&tickets[(j + 1u) % 2u]);
      } else {
        blk += nwg;
      }
    }
    have_pre = false;
    let more = SYNC == 1u && pi + 1u < p.p_end;
    if (more) { arrive(li); }
    // The next product's first chunks of this thread's rows do not depend on its input: loaded after this
    // workgroup's arrival is counted (before it, the device-scope fence would wait for them), while others
    // finish.
    if ((PF == 1u || PF == 3u) && more) {
      let nk = (pi + 1u) % 4u;
      pre = load_chunk(nk, shape_of(nk), wid * G * per(shape_of(nk)) + grp, lane);
      if (PF == 3u) { pre1 = load_chunk(nk, shape_of(nk), wid * G * per(shape_of(nk)) + grp, lane + LANES); }
      have_pre = true;
    }
    if (PF == 2u && more) {
      let nk = (pi + 1u) % 4u;
      let ns = shape_of(nk);
      let n0 = wid * G * per(ns) + grp;
      pf[li] = one(nk, slot_row(ns, n0, 0u), lane, ns.k16);
      pf[WG + li] = one(nk, slot_row(ns, n0, 1u), lane, ns.k16);
      have_pre = true;
    }
    if (more) {
      wait_all(pi - p.p_begin, nwg, li);
    } else {
      workgroupBarrier(); // red and norm are rewritten by the next product
    }
  }
}
