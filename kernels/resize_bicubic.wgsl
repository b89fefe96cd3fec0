// Pillow's BICUBIC resize of an RGB8 image (src/image/bicubic_resize.ts, bit-exact) as two GPU passes, the
// second writing normalised tiles straight into the vision encoder's input:
//   MODE 0 (horizontal): src = the image's RGB bytes [H, W, 3] packed 4 a word → out [H, Wo, 3] u32 samples
//   MODE 1 (vertical):   src = MODE 0's samples [H, Wo, 3] → out [tiles, 3, S, S] f32 (as u32 bits), where
//                        output pixel (x, y) of the Wo × Ho image is pixel (x mod S, y mod S) of tile
//                        tile_base + (y / S)·(Wo / S) + x / S, channel c = lut[c·256 + value]; tiles that
//                        fall outside out are not written (tile_base may be negative: a vision pass takes
//                        a group of tiles, and an image's tiles may start in an earlier group).
// Each output sample is Pillow's integer sum: bias 2^21 + Σ input·weight (Q22 taps, i32 as in Pillow),
// shifted right by 22 and clipped to 0..255; a pass over an axis that keeps its size uses identity taps
// (one weight 2^22), which give the input back exactly, so a pass is never skipped.
// Taps come from axisCoefficients (the CPU code) so both sides use the same weights.
//
// Bindings: 1 src  [*] u32 (MODE 0: bytes, little-endian, 4 a word; MODE 1: one sample a word)
//           2 taps [2·n_out + n_out·ksize] i32: first input index per output, tap count per output, weights
//           3 lut  [3·256] f32 (MODE 1: T.ToTensor + T.Normalize of each byte value per channel; any otherwise)
//           4 out  [*] u32 (MODE 0: samples; MODE 1: f32 bits, [tiles, 3, S, S])
// Params:   width = row length of src in pixels, n_out = outputs of this pass's axis, ksize, S, tile_base
//           (i32), tiles (in out), groups_per_row, total = threads (one per output pixel)
// Grid:     flat over total = rows · row length of the output, folded into 2-D (src/ops/grid.ts), 256 a group.
// Features: none.
struct Params {
  width: u32, n_out: u32, ksize: u32, S: u32, tile_base: i32, tiles: u32, groups_per_row: u32, total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> taps: array<i32>;
@group(0) @binding(3) var<storage, read> lut: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

override MODE: u32 = 0u;
const PRECISION_BITS = 22u;

fn byte_at(i: u32) -> i32 {
  return i32((src[i >> 2u] >> ((i & 3u) * 8u)) & 0xFFu);
}

fn clip8(acc: i32) -> u32 {
  return u32(clamp(acc >> PRECISION_BITS, 0, 255));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.total) { return; }
  let bias = 1i << (PRECISION_BITS - 1u);
  var r = bias;
  var g = bias;
  var b = bias;
  if (MODE == 0u) {
    // Output (x, y) of a [rows, n_out] image; taps along x.
    let x = i % p.n_out;
    let y = i / p.n_out;
    let first = u32(taps[x]);
    let count = u32(taps[p.n_out + x]);
    let k0 = 2u * p.n_out + x * p.ksize;
    var at = (y * p.width + first) * 3u;
    for (var t = 0u; t < count; t++) {
      let w = taps[k0 + t];
      r += byte_at(at) * w;
      g += byte_at(at + 1u) * w;
      b += byte_at(at + 2u) * w;
      at += 3u;
    }
    let o = i * 3u;
    out[o] = clip8(r);
    out[o + 1u] = clip8(g);
    out[o + 2u] = clip8(b);
    return;
  }
  // Output (x, y) of a [n_out, width] image; taps along y.
  let x = i % p.width;
  let y = i / p.width;
  let S = p.S;
  let t_signed = p.tile_base + i32((y / S) * (p.width / S) + x / S);
  if (t_signed < 0 || t_signed >= i32(p.tiles)) { return; }
  let tile = u32(t_signed);
  let first = u32(taps[y]);
  let count = u32(taps[p.n_out + y]);
  let k0 = 2u * p.n_out + y * p.ksize;
  for (var t = 0u; t < count; t++) {
    let w = taps[k0 + t];
    let at = ((first + t) * p.width + x) * 3u;
    r += i32(src[at]) * w;
    g += i32(src[at + 1u]) * w;
    b += i32(src[at + 2u]) * w;
  }
  let plane = S * S;
  let o = tile * 3u * plane + (y % S) * S + x % S;
  out[o] = bitcast<u32>(lut[clip8(r)]);
  out[o + plane] = bitcast<u32>(lut[256u + clip8(g)]);
  out[o + 2u * plane] = bitcast<u32>(lut[512u + clip8(b)]);
}
