// Experiment (docs/PERF.md, "L2 warm-up"), not used by the model unless asked: reads vec4 words
// [first, first + count) of a buffer and throws them away, so that a later kernel finds them in L2. Meant to
// be recorded right after a latency-bound dispatch (the decode attention) with nothing written that the
// driver would have to order: it then runs beside that dispatch on the memory bandwidth it leaves idle.
// Each thread issues UNROLL independent loads a round (a loop of one load would wait on each in turn).
//
// Bindings: 1 src [*] vec4<u32> (any buffer), 2 sink [1] u32 (written only if the words' xor hits a fixed
//   value, which keeps the loads from being optimised away; its own buffer so no barrier is needed).
// Params:   first, count (vec4 words).
// Grid:     any number of workgroups of 256; the threads stride over the range.
// Features: none.
struct Params { first: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

const UNROLL = 8u;

fn at(i: u32) -> vec4<u32> {
  if (i < p.first + p.count) { return src[i]; }
  return vec4<u32>(0u);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let threads = ng.x * 256u;
  var acc = vec4<u32>(0u);
  for (var i = p.first + gid.x; i < p.first + p.count; i += UNROLL * threads) {
    let a = at(i);
    let b = at(i + threads);
    let c = at(i + 2u * threads);
    let d = at(i + 3u * threads);
    let e = at(i + 4u * threads);
    let f = at(i + 5u * threads);
    let g = at(i + 6u * threads);
    let h = at(i + 7u * threads);
    acc ^= ((a ^ b) ^ (c ^ d)) ^ ((e ^ f) ^ (g ^ h));
  }
  let v = (acc.x ^ acc.y) ^ (acc.z ^ acc.w);
  if (v == 0x9E3779B9u) { sink[0] = v; }
}
