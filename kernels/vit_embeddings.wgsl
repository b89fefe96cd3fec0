// InternVisionEmbeddings after the patch conv: out[n] = concat(class_embedding, patch_embeds[n]) + pos.
// Bindings: 1 patches [N, P, D] f32, 2 cls [D] f32, 3 pos [P + 1, D] f32 (already resized to the grid),
//           4 out [N, P + 1, D] f32.
// Params:   n = N·(P+1)·D, p = P, d = D, groups_per_row.
// Grid:     ceil(n / 256) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params { n: u32, p: u32, d: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> patches: array<f32>;
@group(0) @binding(2) var<storage, read> cls: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let d = i % p.d;
  let j = (i / p.d) % (p.p + 1u); // token: 0 = CLS, 1.. = patches
  let img = i / (p.d * (p.p + 1u));
  var v: f32;
  if (j == 0u) {
    v = cls[d];
  } else {
    v = patches[(img * p.p + j - 1u) * p.d + d];
  }
  out[i] = v + pos[j * p.d + d];
}
