import assert from "node:assert/strict";
import { linear, uploadLinear } from "../../src/ops/linear.ts";
import {
  createLlmInt8RowsScratch,
  destroyLlmInt8RowsScratch,
  llmInt8Rows,
  matvecLlmInt8,
} from "../../src/ops/matvec_dp4a.ts";
import { matvecConfig } from "../../src/ops/matvec_i8.ts";
import {
  describeTilingOverrides,
  dp4aKey,
  matvecKey,
  parseTilingOverrides,
  tilingOverrides,
} from "../../src/ops/tiling_overrides.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { testGpu } from "./check.ts";
import { hostInt8 } from "./host_linear.ts";

/** Runs `f` with the process-wide overrides set to `list`, then empties them whatever happens. */
async function withTilings<T>(list: string, f: () => T | Promise<T>): Promise<T> {
  Object.assign(tilingOverrides, parseTilingOverrides(list));
  try {
    return await f();
  } finally {
    Object.assign(tilingOverrides, parseTilingOverrides(""));
  }
}

Deno.test("--tiling lists parse into per-kernel tilings, print back as given, and reject the rest", () => {
  const list =
    "matvec_i8:linear:2:6144:6144=linear_matvec;matvec_i8:gateUp:3:16384:6144=R4,L16,U1,VEC,P264;" +
    "matvec_dp4a:gateUp:8:16384:6144=R4,L8,U4;matvec_dp4a:8:6144:16384=R1,L16,U4,PH1;" +
    "matvec_dp4a:5:8192:6144=R4,L16,U4,S2";
  const o = parseTilingOverrides(` ${list.replaceAll(";", " ; ")} `);
  assert.equal(o.matvec.get(matvecKey("linear", 2, 6144, 6144)), "linear_matvec");
  assert.deepEqual(o.matvec.get(matvecKey("gateUp", 3, 16384, 6144)), {
    R: 4,
    LANES: 16,
    U: 1,
    VEC: true,
    persist: 264,
  });
  assert.deepEqual(o.dp4a.get(dp4aKey(true, 8, 16384, 6144)), { R: 4, LANES: 8, U: 4 });
  assert.deepEqual(o.dp4a.get(dp4aKey(false, 8, 6144, 16384)), { R: 1, LANES: 16, U: 4, phases: 1 });
  assert.deepEqual(o.dp4a.get(dp4aKey(false, 5, 8192, 6144)), { R: 4, LANES: 16, U: 4, split: 2 });
  assert.equal(o.matvec.size + o.dp4a.size, 5);
  assert.equal(describeTilingOverrides(o), list);
  assert.equal(describeTilingOverrides(parseTilingOverrides("")), "none");
  for (
    const [bad, why] of [
      ["matvec_i8:linear:2:6144:6144", /no '='/],
      ["matvec_i8:norm:2:8192:6144=linear_matvec", /plain linears only/],
      ["matvec_i8:linear:2:6144:6144=R3,L64,U2", /R must be one of 1, 2, 4, 8/],
      ["matvec_i8:linear:2:6144:6144=R4,L64", /U must be one of/],
      ["matvec_i8:linear:2:6144:6144=R4,R4,L64,U2", /repeated field "R4"/],
      ["matvec_i8:linear:2:6144:6144=R4,L64,U2,PH4", /PH and S are matvec_dp4a's/],
      ["matvec_i8:linear:2:6144:6144=R4,L64,U2,S2", /PH and S are matvec_dp4a's/],
      ["matvec_dp4a:1:6144:6144=R1,L16,U4,S2", /S2 takes T ≥ 2/],
      ["matvec_dp4a:2:6144:6144=R1,L16,U4,S3", /S must be one of 1, 2/],
      ["matvec_i8:head:1:92553:6144=R4,L32,U4", /MODE:T:N:K expected/],
      ["matvec_dp4a:gateUp:8:16384:6144=R1,L8,U2", /R ≥ 2/],
      ["matvec_dp4a:17:6144:6144=R1,L8,U2", /T ≤ 16/],
      ["matvec_dp4a:8:6144:6144=R1,L64,U2", /L must be one of 4, 8, 16, 32/],
      ["matvec_dp4a:8:6144:6144=R1,L8,U2,VEC", /VEC and P are matvec_i8's/],
      ["linear_tiled:8:6144:6144=R1,L8,U2", /no kernel "linear_tiled"/],
    ] as const
  ) {
    assert.throws(() => parseTilingOverrides(bad), why, bad);
  }
});

Deno.test("a set tiling replaces the shape's own choice, on any adapter, only for its key", async () => {
  const chosen = matvecConfig("linear", 4, 6144, 6144);
  await withTilings(
    "matvec_i8:linear:4:6144:6144=R2,L16,U1,VEC;matvec_i8:linear:2:6144:16384=linear_matvec",
    () => {
      assert.deepEqual(matvecConfig("linear", 4, 6144, 6144), { R: 2, LANES: 16, U: 1, VEC: true });
      assert.deepEqual(matvecConfig("linear", 4, 6144, 6144, true), { R: 2, LANES: 16, U: 1, VEC: true });
      assert.equal(matvecConfig("linear", 2, 6144, 16384), null);
      assert.deepEqual(matvecConfig("linear", 3, 6144, 6144), matvecConfig("linear", 3, 6144, 6144));
      assert.deepEqual(matvecConfig("norm", 4, 6144, 6144), { R: 4, LANES: 32, U: 4, persist: 264 });
    },
  );
  assert.deepEqual(matvecConfig("linear", 4, 6144, 6144), chosen);

  // The launchers record what was set: weight-only through linear(), LLM.int8 through matvecLlmInt8.
  const gpu = await testGpu();
  const T = 3, K = 64, N = 16;
  const w = uploadLinear(gpu, "w", hostInt8(N, K, false, 7));
  const x = gpu.uploadTensor("x", "f32", [T, K], randomF32(T * K, 8));
  const out = gpu.createTensor("out", "f32", [T, N]);
  const rows = createLlmInt8RowsScratch(gpu, "rows", T, K);
  const record = () => {
    const r = gpu.recorder("tilings");
    linear(r, x, w, out);
    matvecLlmInt8(r, llmInt8Rows(r, x, rows), w, out);
    return r.recorded.filter((d) => d.kernel.startsWith("matvec") || d.kernel === "linear_matvec");
  };
  try {
    const tiling = (
      d: { kernel: string; constants: Readonly<Record<string, number>> },
    ) => [d.kernel, d.constants.R, d.constants.LANES, d.constants.U, d.constants.PHASES];
    const set = await withTilings(
      "matvec_i8:linear:3:16:64=R2,L16,U2;matvec_dp4a:3:16:64=R2,L8,U1,PH2",
      record,
    );
    assert.deepEqual(set.map(tiling), [["matvec_i8", 2, 16, 2, undefined], ["matvec_dp4a", 2, 8, 1, 2]]);
    const direct = await withTilings("matvec_i8:linear:3:16:64=linear_matvec", record);
    assert.equal(direct[0].kernel, "linear_matvec");
    // Unset again: the shape's own choice (a CPU adapter's or a GPU's), not the last one set.
    assert.notDeepEqual(record().map(tiling), set.map(tiling));
  } finally {
    destroyLlmInt8RowsScratch(rows);
    for (const t of [x, out, w.weight, w.kind === "int8" ? w.scale : null]) t?.buffer.destroy();
  }
});
