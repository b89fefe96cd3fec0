// kernels/matvec_i8.wgsl with 16-byte weight loads (K % 16 == 0): a lane's unit is a chunk of four i8x4 words
// of each of its rows, one vec4<u32> load a row, whose words then go through the same one-word math (x and g
// still one vec4<f32> a word), in the same order, so the sums are those of matvec_i8 with the words taken
// chunk by chunk. Lane l takes chunks l, l + LANES, …; U = 1: one chunk of every row in flight, U > 1: two.
// Everything else (modes, bindings 0–8, params, the other overrides, grid) is matvec_i8.wgsl's, through
// kernels/matvec_i8_core.wgsl. Chosen per token count by src/ops/matvec_i8.ts (PERF.md v38, v39).
//
// Bindings: those of matvec_i8.wgsl, w1 and w3 (3, 5) viewed as vec4<u32>. (PROBE 3, no weight loads, is
// matvec_i8.wgsl's only.)

// #include int8
// #include matvec_i8_core

@group(0) @binding(3) var<storage, read> w1v: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> w3v: array<vec4<u32>>;

// Chunk c of the lo rows (l0..l3) and of the hi rows (h0..h3).
struct Chunk {
  l0: vec4<u32>, l1: vec4<u32>, l2: vec4<u32>, l3: vec4<u32>,
  h0: vec4<u32>, h1: vec4<u32>, h2: vec4<u32>, h3: vec4<u32>,
}

// oa4/ob4 = row offsets in chunks (row · k4 / 4).
fn load_chunk(c: u32, oa4: vec4<u32>, ob4: vec4<u32>) -> Chunk {
  var r = Chunk();
  r.l0 = w1v[oa4.x + c];
  if (nlo() > 1u) { r.l1 = w1v[oa4.y + c]; }
  if (nlo() > 2u) {
    r.l2 = w1v[oa4.z + c];
    r.l3 = w1v[oa4.w + c];
  }
  if (nhi() > 0u) { r.h0 = w3v[ob4.x + c]; }
  if (nhi() > 1u) { r.h1 = w3v[ob4.y + c]; }
  if (nhi() > 2u) {
    r.h2 = w3v[ob4.z + c];
    r.h3 = w3v[ob4.w + c];
  }
  return r;
}

// The chunk's four words, each as the Words of every row, through the one-word math.
fn accumulate_chunk(acc: ptr<function, Acc>, c: u32, k: Chunk) {
  let q = 4u * c;
  accumulate(acc, q,
             Words(vec4<u32>(k.l0.x, k.l1.x, k.l2.x, k.l3.x), vec4<u32>(k.h0.x, k.h1.x, k.h2.x, k.h3.x)));
  accumulate(acc, q + 1u,
             Words(vec4<u32>(k.l0.y, k.l1.y, k.l2.y, k.l3.y), vec4<u32>(k.h0.y, k.h1.y, k.h2.y, k.h3.y)));
  accumulate(acc, q + 2u,
             Words(vec4<u32>(k.l0.z, k.l1.z, k.l2.z, k.l3.z), vec4<u32>(k.h0.z, k.h1.z, k.h2.z, k.h3.z)));
  accumulate(acc, q + 3u,
             Words(vec4<u32>(k.l0.w, k.l1.w, k.l2.w, k.l3.w), vec4<u32>(k.h0.w, k.h1.w, k.h2.w, k.h3.w)));
}

// The loop over the weights: two chunks of every row in flight (U > 1) or one, then the chunks left one at a
// time.
fn weight_loop(lane: u32, oa: vec4<u32>, ob: vec4<u32>) -> Acc {
  let k16 = p.k4 / 4u;
  let oa4 = oa / 4u;
  let ob4 = ob / 4u;
  var acc = Acc();
  var c = lane;
  if (U > 1u) {
    for (; c + LANES < k16; c += 2u * LANES) {
      let k0 = load_chunk(c, oa4, ob4);
      let k1 = load_chunk(c + LANES, oa4, ob4);
      accumulate_chunk(&acc, c, k0);
      accumulate_chunk(&acc, c + LANES, k1);
    }
  }
  for (; c < k16; c += LANES) {
    accumulate_chunk(&acc, c, load_chunk(c, oa4, ob4));
  }
  return acc;
}
