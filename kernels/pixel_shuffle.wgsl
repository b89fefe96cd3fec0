// InternVL pixel shuffle, ps_version v2 with downsample 0.5 (REFERENCE §6), CLS token dropped:
// output token (r, s) of a tile (index r·P/2 + s) = concat over (a, b) ∈ [(0,0), (0,1), (1,0), (1,1)] of
// input patch (2r+a, 2s+b), patch index row·P + col, which is input row 1 + patch (row 0 is CLS).
// Bindings: 1 x [N, 1 + P·P, C] f32, 2 out [N, (P/2)², 4C] f32.
// Params: n = N·(P/2)²·4C, channels C, grid_side P, row_stride_groups (flat-grid fold).
// Grid: flatGrid(n, 256), one thread per output element (writes coalesced; reads are runs of C).
// Features: none.
struct Params { n: u32, channels: u32, grid_side: u32, row_stride_groups: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.row_stride_groups + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let C = p.channels;
  let P = p.grid_side;
  let h2 = P / 2u;
  let width = 4u * C;
  let row = i / width;            // n·(P/2)² + token
  let ch = i - row * width;
  let tile = row / (h2 * h2);
  let tok = row - tile * h2 * h2;
  let r = tok / h2;
  let s = tok - r * h2;
  let blk = ch / C;               // a·2 + b
  let c = ch - blk * C;
  let src_patch = (2u * r + blk / 2u) * P + 2u * s + blk % 2u;
  out[i] = x[(tile * (1u + P * P) + 1u + src_patch) * C + c];
}
