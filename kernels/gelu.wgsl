// Exact (erf) GELU, nn.GELU() / ACT2FN["gelu"]: out = 0.5 · x · (1 + erf(x / √2)).
// WGSL has no erf. 1 + erf(y) is evaluated directly: a Taylor series for |y| < 0.5 (error < 1e-9), else
// erfc(|y|) from Numerical Recipes' Chebyshev fit `erfcc` (relative error < 1.2e-7 for all y ≥ 0), using
// 1 + erf(y) = erfc(−y). For y < 0 that keeps GELU's small negative tail relatively accurate instead of
// cancelling 1 − 0.99999…; the absolute error of erf is ~1e-7 everywhere.
// Bindings: 1 x [T, N] f32, 2 out [T, N] f32 (not x).
// Params:   n = T·N, groups_per_row.
// Grid:     ceil(T·N / 256) workgroups of 256, folded into 2-D as (wg.y * groups_per_row + wg.x).
// Features: none.
struct Params { n: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// 1 + erf(y)
fn one_plus_erf(y: f32) -> f32 {
  let a = abs(y);
  if (a < 0.5) {
    // erf(y) = 2/√π · Σ (−1)ⁿ y^(2n+1) / (n! (2n+1)), n ≤ 6
    let z = y * y;
    let s = 1.0 + z * (-1.0 / 3.0 + z * (1.0 / 10.0 + z * (-1.0 / 42.0 + z * (1.0 / 216.0 +
      z * (-1.0 / 1320.0 + z * (1.0 / 9360.0))))));
    return 1.0 + 1.1283791670955126 * y * s;
  }
  let t = 1.0 / (1.0 + 0.5 * a);
  let erfc_a = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 +
    t * 0.17087277)))))))));
  return select(2.0 - erfc_a, erfc_a, y < 0.0);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i >= p.n) { return; }
  let v = x[i];
  out[i] = 0.5 * v * one_plus_erf(v * 0.7071067811865476);
}
