// Not a kernel: the register-blocked flash-attention core shared by attention_full.wgsl (ViT) and
// attention_prefill.wgsl (LLM prompt pass), pasted where either says `// #include flash_tile`
// (src/gpu/kernel_source.ts). It holds the tile geometry, the workgroup staging arrays, the named score,
// output and staging registers, and the S = Q·Kᵀ, online-softmax and O += P·V steps over one key block.
// The including kernel supplies its bindings, the stage loads (issue/store: which rows, which masks) and
// main. See attention_full.wgsl's header for the scheme.

override D4: u32 = 32u;
override BQ: u32 = 64u;
override PREFETCH: bool = false;
override RS: u32 = BQ / 4u; // row groups; also the row step between a thread's query rows
override WG: u32 = 2u * BQ;
override KR: u32 = BK / RS; // K and V rows a thread stages per stage: 2 (BQ 64) or 4 (BQ 32)
override NCH: u32 = (D4 + DC - 1u) / DC; // stages per key block

const BK = 32u;
const DC = 8u; // vec4 columns per stage: one per tx
const NEG = -3.0e38;

// Rows 0..BQ-1: Q stage, then P [BQ][32 keys as 8 vec4]; rows BQ..BQ+31: K stage. Row stride 9 vec4 so
// the 4 rows (Q, P) or 8 keys (K) one warp reads per step fall in different banks.
var<workgroup> qk: array<array<vec4f, 9>, BQ + BK>;
var<workgroup> vs: array<array<vec4f, 32>, BK>; // [key][Dh/4]; a warp reads 8 consecutive vec4 of one key
var<workgroup> red: array<array<vec4f, 2>, BQ>; // [row][tx]: per-thread row max, at the end row sum

var<private> tx: u32;
var<private> ty: u32;
// Scores: s{i} = row ty + RS·i, components j = keys tx + 8j of the block.
var<private> s0: vec4f;
var<private> s1: vec4f;
var<private> s2: vec4f;
var<private> s3: vec4f;
// Output accumulators: o{i}{c} = row ty + RS·i, vec4 column tx + 8c.
var<private> o00: vec4f;
var<private> o01: vec4f;
var<private> o02: vec4f;
var<private> o03: vec4f;
var<private> o10: vec4f;
var<private> o11: vec4f;
var<private> o12: vec4f;
var<private> o13: vec4f;
var<private> o20: vec4f;
var<private> o21: vec4f;
var<private> o22: vec4f;
var<private> o23: vec4f;
var<private> o30: vec4f;
var<private> o31: vec4f;
var<private> o32: vec4f;
var<private> o33: vec4f;
// Running max of each owned row (NEG until the row has seen a key) and this thread's share of its running
// sum (its own keys only; the 8 shares of a row are added at the end).
var<private> m0: f32;
var<private> m1: f32;
var<private> m2: f32;
var<private> m3: f32;
var<private> l0: f32;
var<private> l1: f32;
var<private> l2: f32;
var<private> l3: f32;
// One stage in flight: Q rows ty + RS·u, K and V rows ty + RS·u (u < KR), column tx of the stage.
var<private> pq0: vec4f;
var<private> pq1: vec4f;
var<private> pq2: vec4f;
var<private> pq3: vec4f;
var<private> pk0: vec4f;
var<private> pk1: vec4f;
var<private> pk2: vec4f;
var<private> pk3: vec4f;
var<private> pv0: vec4f;
var<private> pv1: vec4f;
var<private> pv2: vec4f;
var<private> pv3: vec4f;

// One vec4 column c of the stage: 4 rows × 4 keys × 4 components.
fn scoreStep(c: u32) {
  let a0 = qk[ty][c];
  let a1 = qk[ty + RS][c];
  let a2 = qk[ty + 2u * RS][c];
  let a3 = qk[ty + 3u * RS][c];
  let k0 = qk[BQ + tx][c];
  let k1 = qk[BQ + tx + 8u][c];
  let k2 = qk[BQ + tx + 16u][c];
  let k3 = qk[BQ + tx + 24u][c];
  let kx = vec4f(k0.x, k1.x, k2.x, k3.x);
  let ky = vec4f(k0.y, k1.y, k2.y, k3.y);
  let kz = vec4f(k0.z, k1.z, k2.z, k3.z);
  let kw = vec4f(k0.w, k1.w, k2.w, k3.w);
  s0 = fma(a0.wwww, kw, fma(a0.zzzz, kz, fma(a0.yyyy, ky, fma(a0.xxxx, kx, s0))));
  s1 = fma(a1.wwww, kw, fma(a1.zzzz, kz, fma(a1.yyyy, ky, fma(a1.xxxx, kx, s1))));
  s2 = fma(a2.wwww, kw, fma(a2.zzzz, kz, fma(a2.yyyy, ky, fma(a2.xxxx, kx, s2))));
  s3 = fma(a3.wwww, kw, fma(a3.zzzz, kz, fma(a3.yyyy, ky, fma(a3.xxxx, kx, s3))));
}

fn scoreStage() {
  scoreStep(0u);
  scoreStep(1u);
  scoreStep(2u);
  scoreStep(3u);
  scoreStep(4u);
  scoreStep(5u);
  scoreStep(6u);
  scoreStep(7u);
}

// Key j of the block with probabilities a{i} of the thread's rows: O{i} += a{i} · V[j] (vec4 columns past
// Dh are compiled out).
fn pvKey(j: u32, a0: f32, a1: f32, a2: f32, a3: f32) {
  let v0 = vs[j][tx];
  o00 = fma(vec4f(a0), v0, o00);
  o10 = fma(vec4f(a1), v0, o10);
  o20 = fma(vec4f(a2), v0, o20);
  o30 = fma(vec4f(a3), v0, o30);
  if (D4 > 8u) {
    let v1 = vs[j][tx + 8u];
    o01 = fma(vec4f(a0), v1, o01);
    o11 = fma(vec4f(a1), v1, o11);
    o21 = fma(vec4f(a2), v1, o21);
    o31 = fma(vec4f(a3), v1, o31);
  }
  if (D4 > 16u) {
    let v2 = vs[j][tx + 16u];
    o02 = fma(vec4f(a0), v2, o02);
    o12 = fma(vec4f(a1), v2, o12);
    o22 = fma(vec4f(a2), v2, o22);
    o32 = fma(vec4f(a3), v2, o32);
  }
  if (D4 > 24u) {
    let v3 = vs[j][tx + 24u];
    o03 = fma(vec4f(a0), v3, o03);
    o13 = fma(vec4f(a1), v3, o13);
    o23 = fma(vec4f(a2), v3, o23);
    o33 = fma(vec4f(a3), v3, o33);
  }
}

// Keys 4·j4 .. 4·j4 + 3: one vec4 of P per row.
fn pvQuad(j4: u32) {
  let a0 = qk[ty][j4];
  let a1 = qk[ty + RS][j4];
  let a2 = qk[ty + 2u * RS][j4];
  let a3 = qk[ty + 3u * RS][j4];
  pvKey(4u * j4, a0.x, a1.x, a2.x, a3.x);
  pvKey(4u * j4 + 1u, a0.y, a1.y, a2.y, a3.y);
  pvKey(4u * j4 + 2u, a0.z, a1.z, a2.z, a3.z);
  pvKey(4u * j4 + 3u, a0.w, a1.w, a2.w, a3.w);
}

fn pvBlock() {
  pvQuad(0u);
  pvQuad(1u);
  pvQuad(2u);
  pvQuad(3u);
  pvQuad(4u);
  pvQuad(5u);
  pvQuad(6u);
  pvQuad(7u);
}

fn rescale(a0: f32, a1: f32, a2: f32, a3: f32) {
  o00 *= a0;
  o01 *= a0;
  o02 *= a0;
  o03 *= a0;
  o10 *= a1;
  o11 *= a1;
  o12 *= a1;
  o13 *= a1;
  o20 *= a2;
  o21 *= a2;
  o22 *= a2;
  o23 *= a2;
  o30 *= a3;
  o31 *= a3;
  o32 *= a3;
  o33 *= a3;
}

fn hmax(x: vec4f) -> f32 {
  return max(max(x.x, x.y), max(x.z, x.w));
}

// Key tx + 8j of the block goes to P column (tx + 8j) / 4 = tx / 4 + 2j, component tx % 4.
fn putP(row: u32, e: vec4f) {
  let c = tx / 4u;
  let m = tx % 4u;
  qk[row][c][m] = e.x;
  qk[row][c + 2u][m] = e.y;
  qk[row][c + 4u][m] = e.z;
  qk[row][c + 6u][m] = e.w;
}

fn putRed(row: u32, x: f32) {
  red[row][tx / 4u][tx % 4u] = x;
}

fn startRows() {
  m0 = NEG;
  m1 = NEG;
  m2 = NEG;
  m3 = NEG;
  l0 = 0.0;
  l1 = 0.0;
  l2 = 0.0;
  l3 = 0.0;
}

// Online softmax over one key block: e{i} = exp(s{i} − mn{i}) for the thread's keys of owned row i (0 where
// masked) and mn{i} the row's new running max. Rescales the sums and accumulators by e^(m − mn), publishes P
// and accumulates P·V.
fn acceptBlock(e0: vec4f, e1: vec4f, e2: vec4f, e3: vec4f, mn0: f32, mn1: f32, mn2: f32, mn3: f32) {
  let a0 = exp(m0 - mn0);
  let a1 = exp(m1 - mn1);
  let a2 = exp(m2 - mn2);
  let a3 = exp(m3 - mn3);
  l0 = l0 * a0 + ((e0.x + e0.y) + (e0.z + e0.w));
  l1 = l1 * a1 + ((e1.x + e1.y) + (e1.z + e1.w));
  l2 = l2 * a2 + ((e2.x + e2.y) + (e2.z + e2.w));
  l3 = l3 * a3 + ((e3.x + e3.y) + (e3.z + e3.w));
  m0 = mn0;
  m1 = mn1;
  m2 = mn2;
  m3 = mn3;
  rescale(a0, a1, a2, a3);
  putP(ty, e0);
  putP(ty + RS, e1);
  putP(ty + 2u * RS, e2);
  putP(ty + 3u * RS, e3);
  workgroupBarrier();
  pvBlock();
}

// After the last block: each row's sum shares into red (last read before the final P barrier, so free).
fn putRowSums() {
  putRed(ty, l0);
  putRed(ty + RS, l1);
  putRed(ty + 2u * RS, l2);
  putRed(ty + 3u * RS, l3);
  workgroupBarrier();
}

// Writes the stage held in pq/pk/pv (loaded by the kernel's issue) into workgroup memory: Q and K at
// column tx, V at column ch·DC + tx.
fn storeStage(ch: u32) {
  qk[ty][tx] = pq0;
  qk[ty + RS][tx] = pq1;
  qk[ty + 2u * RS][tx] = pq2;
  qk[ty + 3u * RS][tx] = pq3;
  qk[BQ + ty][tx] = pk0;
  qk[BQ + ty + RS][tx] = pk1;
  let col = ch * DC + tx;
  vs[ty][col] = pv0;
  vs[ty + RS][col] = pv1;
  if (KR > 2u) {
    qk[BQ + ty + 2u * RS][tx] = pk2;
    qk[BQ + ty + 3u * RS][tx] = pk3;
    vs[ty + 2u * RS][col] = pv2;
    vs[ty + 3u * RS][col] = pv3;
  }
}
