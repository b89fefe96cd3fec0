// Reads the first C16 16-byte chunks of every row of a row-major int8 matrix into L2, so that the product
// recorded next, which streams the matrix row by row, starts on L2 hits (src/ops/prefetch_row_heads.ts says
// where and why). It writes nothing: the store, guarded by a compare that random data practically never
// meets, only keeps the loads alive; its sink is a buffer of its own, so no barrier orders this dispatch
// after the one before it and the GPU runs it in that one's tail. It must declare no workgroup memory: with a
// 16-byte workgroup array the one-row decode step took 0.31 ms longer (H200, PERF.md v95), and one chunk a
// thread in flight at a time beat two or four.
//
// Bindings: 1 w [n, row16] vec4<u32> (an [N, K] i8x4 matrix, K % 16 == 0), 2 sink [≥1] u32.
// Params: n = N, row16 = K/16, c16 (chunks a row, ≤ row16), total = n·c16, magic.
// Grid: any count of 256-thread workgroups; thread i takes chunks i, i + 256·workgroups, … of the heads in
// row order. Features: none.
struct Params { n: u32, row16: u32, c16: u32, total: u32, magic: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  var acc = vec4<u32>(0u);
  let stride = nwg.x * 256u;
  for (var i = gid.x; i < p.total; i += stride) {
    acc ^= w[(i / p.c16) * p.row16 + i % p.c16];
  }
  let h = (acc.x ^ acc.y) ^ (acc.z ^ acc.w);
  if (h == p.magic) { sink[0] = h; }
}
