// Experiment (scripts/bench_stream_chain.ts, PERF.md v52): a plain read of `total` 16-byte words, grid-stride,
// U independent loads a thread in flight; the bandwidth a product of the same bytes could reach. It writes
// nothing unless a thread's XOR of its words equals `magic` (random data: practically never), which keeps the
// loads alive; the test sets `magic` to thread 0's XOR to check that every word of that thread was read.
//
// Bindings: 1 w [total] vec4<u32>, 2 sink [≥1] u32 (a buffer of its own per dispatch lets dispatches run
//   without a barrier between them; one shared buffer orders them).
// Params: total, magic. Overrides: U = 1, 2 or 4. Grid: any count of 256-thread workgroups (≤ 65535).
// Features: none.
struct Params { total: u32, magic: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

override U: u32 = 1u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  var a0 = vec4<u32>(0u);
  var a1 = vec4<u32>(0u);
  var a2 = vec4<u32>(0u);
  var a3 = vec4<u32>(0u);
  let s = nwg.x * 256u;
  var i = gid.x;
  if (U == 4u) {
    for (; i + 3u * s < p.total; i += 4u * s) {
      a0 ^= w[i];
      a1 ^= w[i + s];
      a2 ^= w[i + 2u * s];
      a3 ^= w[i + 3u * s];
    }
  }
  if (U == 2u) {
    for (; i + s < p.total; i += 2u * s) {
      a0 ^= w[i];
      a1 ^= w[i + s];
    }
  }
  for (; i < p.total; i += s) { a0 ^= w[i]; }
  let a = (a0 ^ a1) ^ (a2 ^ a3);
  let h = (a.x ^ a.y) ^ (a.z ^ a.w);
  if (h == p.magic) { sink[0] = h; }
}
