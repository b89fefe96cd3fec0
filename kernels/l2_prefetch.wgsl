// Reads a buffer once so that its bytes sit in the GPU's L2 cache when the next kernel needs them.
// Recorded right after a latency-bound dispatch (decode attention) that leaves the memory bus mostly idle
// and that it has no resource conflict with, so the GPU runs both at once; the matrix-vector kernel after
// them (the attention output projection, 37.7 MB on InternLM2-20B, under an H100's 50 MB L2) then streams
// from L2 instead of HBM.
// Every thread XORs its words; the result is written only when `report` is set (tests check it covers every
// word), which the compiler cannot rule out, so the loads are never removed.
//
// Bindings: 1 src [count] vec4<u32> (any 16-byte-aligned data), 2 sink [1] atomic u32.
// Params:   count (vec4s), groups_per_row, report.
// Grid:     ceil(count / (256·4)) workgroups of 256 (flat, folded into 2-D); thread i reads vec4s
//           4i … 4i+3 of its workgroup's run, as 4 coalesced waves.
// Features: none.
struct Params { count: u32, groups_per_row: u32, report: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let base = (wg.y * p.groups_per_row + wg.x) * 1024u + li;
  var x = vec4<u32>(0u);
  // Four independent loads per thread, all in flight at once.
  if (base < p.count) { x ^= src[base]; }
  if (base + 256u < p.count) { x ^= src[base + 256u]; }
  if (base + 512u < p.count) { x ^= src[base + 512u]; }
  if (base + 768u < p.count) { x ^= src[base + 768u]; }
  if (p.report != 0u) { atomicXor(&sink[0], x.x ^ x.y ^ x.z ^ x.w); }
}
