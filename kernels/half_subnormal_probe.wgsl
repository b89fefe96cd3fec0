// Whether this device's unpack2x16float keeps subnormal half floats: i8x4_biased (kernels/int8.wgsl) widens
// each int8 weight to the subnormal half (b + 128)·2⁻²⁴, and a driver may flush 16-bit subnormals to zero
// (SPIR-V lets a module's float controls ask for either; naga asks for neither). out[2i], out[2i + 1] are
// the two halves of words[i] as f32; the caller compares them with mantissa·2⁻²⁴.
// Bindings: 1 words [n] u32, 2 out [2n] f32.
// Params:   n.
// Grid:     ceil(n / 64) workgroups of 64.
// Features: none.
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec2<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < p.n) { out[id.x] = unpack2x16float(words[id.x]); }
}
