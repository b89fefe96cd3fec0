import { type Dp4aConfig, matvecDp4a, quantizeRowsI8 } from "../../src/ops/matvec_dp4a.ts";
import { uploadLinear } from "../../src/ops/linear.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertClose, assertNormalisedError, testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";
import { tolerance } from "./tolerances.ts";

/**
 * The contract of quantize_rows_i8, checked against the GPU's own output: scale = max|x|/127 within WGSL's
 * division accuracy (2.5 ulp), every q within half a step of x/scale (one step = scale), |q| ≤ 127, and
 * an all-zero row all zero. (A bit-exact CPU copy would depend on how the GPU rounds 127/max.)
 */
function checkQuantized(x: Float32Array, T: number, K: number, q: Int8Array, scale: Float32Array): void {
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(x[t * K + k]));
    assertClose([scale[t]], [m / 127], 0, 4e-7);
    for (let k = 0; k < K; k++) {
      const i = t * K + k;
      const err = Math.abs(q[i] * scale[t] - x[i]);
      if (!(Math.abs(q[i]) <= 127 && err <= 0.5 * scale[t] * (1 + 1e-5) + 1e-30)) {
        throw new Error(`row ${t}, element ${k}: x=${x[i]} quantized to ${q[i]} × ${scale[t]}`);
      }
    }
  }
}

Deno.test("quantize_rows_i8 + matvec_dp4a (experiment) match the int8 × int8 reference on odd shapes", async (t) => {
  const gpu = await testGpu();
  const cases: [number, number, number, Dp4aConfig, boolean][] = [
    [1, 77, 36, { R: 4, LANES: 32, U: 4 }, false],
    [3, 301, 1100, { R: 2, LANES: 16, U: 2 }, true],
    [8, 45, 2052, { R: 4, LANES: 64, U: 1 }, true],
    [5, 130, 620, { R: 1, LANES: 32, U: 4 }, false],
  ];
  for (const [T, N, K, config, accumulate] of cases) {
    await t.step(`T=${T} N=${N} K=${K} R${config.R} L${config.LANES} U${config.U}`, async () => {
      const seed = T * 7 + N * 13 + K;
      const host = hostInt8(N, K, false, seed);
      const xs = randomF32(T * K, seed + 2, -3, 3);
      if (T > 2) xs.fill(0, 2 * K, 3 * K); // an all-zero row: scale 0, every q 0
      const prior = randomF32(T * N, seed + 3);
      const w = uploadLinear(gpu, "w", host);
      if (w.kind !== "int8") throw new Error("int8 expected");
      const x = gpu.uploadTensor("x", "f32", [T, K], xs);
      const xq = gpu.createTensor("xq", "u32", [T, K / 4]);
      const xsc = gpu.createTensor("xs", "f32", [T]);
      const out = gpu.uploadTensor("out", "f32", [T, N], prior);
      const r = gpu.recorder("test");
      quantizeRowsI8(r, x, xq, xsc);
      const empty = gpu.uploadTensor("empty", "u32", [1 + K], new Uint32Array(1 + K));
      matvecDp4a(r, xq, xsc, w, out, empty, { accumulate, config });
      r.submit();
      const gotQ = new Int8Array(await gpu.readBytes(xq));
      const gotScale = await gpu.readF32(xsc);
      checkQuantized(xs, T, K, gotQ, gotScale);
      // The matvec from the GPU's own int8 activations: integer sums, exact.
      const want = new Float32Array(T * N);
      for (let tt = 0; tt < T; tt++) {
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += gotQ[tt * K + k] * host.weight[n * K + k];
          want[tt * N + n] = Math.fround(host.scb![n] / 127) * gotScale[tt] * acc +
            (accumulate ? prior[tt * N + n] : 0);
        }
      }
      assertNormalisedError(await gpu.readF32(out), want, tolerance.matmul.nerr);
      for (const b of [w.weight, w.scale, x, xq, xsc, out, empty]) b.buffer.destroy();
    });
  }
});
