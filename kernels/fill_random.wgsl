// Seeded pseudo-random fill, done on the GPU so synthetic weights (25 GB at full size) never cross PCIe.
// Counter-based: every 32-bit word w of the tensor gets h = mix(w ^ key), so any word's value depends only on
// (seed, w) — the CPU reference (src/ref/fill_random.ts) reproduces any slice, and the result does not
// depend on the grid. mix is Chris Wellons' "lowbias32" integer hash; key = mix(seed ^ 0x9e3779b9) is
// computed by the launcher.
//
// Bindings: 1 out: array<u32>, the tensor's words (read_write).
// Params:   n words, mode, key, groups_per_row, lo, hi (f32), ilo (i32), ispan (u32),
//           words_per_row, row_elems (packed modes: logical elements past row_elems in a row's last word are 0)
// Modes:    0 i8x4   four bytes of h, each b − 128 with −128 → 0: −127..127 (the range bitsandbytes
//                    produces), 0 twice as likely as each other value;
//           1 f32    lo + (hi − lo)·u, u = (h >> 8)·2⁻²⁴ ∈ [0, 1);
//           2 bf16x2 element 2w+j uses h_j = mix((2w + j) ^ key), value as in f32 mode rounded to bf16 (RNE),
//                    element 2w in the low half;
//           3 i32    ilo + (h mod ispan)  (token ids; ispan ≥ 1)
// Grid:     ceil(n / 256) workgroups of 256, folded into 2-D (src/ops/grid.ts). Features: none.
struct Params {
  n: u32,
  mode: u32,
  key: u32,
  groups_per_row: u32,
  lo: f32,
  hi: f32,
  ilo: i32,
  ispan: u32,
  words_per_row: u32,
  row_elems: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

fn mix(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn uniform_f32(h: u32) -> f32 {
  return p.lo + (p.hi - p.lo) * (f32(h >> 8u) * (1.0 / 16777216.0));
}

// f32 → bf16 bits, round to nearest even (inputs are finite).
fn to_bf16(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (w >= p.n) { return; }
  // Logical elements of this word that lie inside the row (packed rows pad their last word with zeros).
  let first = (w % p.words_per_row) * select(select(1u, 2u, p.mode == 2u), 4u, p.mode == 0u);
  let valid = min(p.row_elems - min(first, p.row_elems), 4u);
  let h = mix(w ^ p.key);
  switch p.mode {
    case 0u: {
      var word = 0u;
      for (var j = 0u; j < valid; j++) {
        // byte 0..255 → −128..127 with −128 folded onto 0: symmetric, so the mean is exactly 0
        let b = i32((h >> (8u * j)) & 0xffu) - 128;
        let v = select(b, 0, b == -128);
        word |= (u32(v) & 0xffu) << (8u * j);
      }
      out[w] = word;
    }
    case 1u: {
      out[w] = bitcast<u32>(uniform_f32(h));
    }
    case 2u: {
      var word = 0u;
      for (var j = 0u; j < min(valid, 2u); j++) {
        word |= to_bf16(uniform_f32(mix((2u * w + j) ^ p.key))) << (16u * j);
      }
      out[w] = word;
    }
    default: {
      out[w] = u32(p.ilo + i32(h % p.ispan));
    }
  }
}
