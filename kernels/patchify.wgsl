// im2col for InternVisionEmbeddings.patch_embedding = Conv2d(3, D, kernel p, stride p): one output row per
// patch (row-major over the G×G grid, like conv(...).flatten(2).transpose(1, 2)), columns ordered like the
// conv weight [D, 3, p, p] flattened: col = c·p² + ky·p + kx. The conv is then `linear` with that weight.
// Bindings: 1 pixels [N, 3, S, S] f32, 2 out [N, G², 3·p²] f32, G = S / p.
// Params:   n = N·G²·3p², s = S, p, g = G, groups_per_row.
// Grid:     ceil(n / 256) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params { n: u32, s: u32, p: u32, g: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let pp = p.p * p.p;
  let col = i % (3u * pp);
  let cell = (i / (3u * pp)) % (p.g * p.g);
  let img = i / (3u * pp * p.g * p.g);
  let c = col / pp;
  let ky = (col % pp) / p.p;
  let kx = col % p.p;
  let y = (cell / p.g) * p.p + ky;
  let x = (cell % p.g) * p.p + kx;
  out[i] = pixels[((img * 3u + c) * p.s + y) * p.s + x];
}
