import assert from "node:assert/strict";
import { attentionFullRows } from "../../src/ops/attention_full_rows.ts";
import { attentionFullRef } from "../../src/ref/attention_full.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

Deno.test("attentionFullRows matches the CPU reference (rows that fill no invocation or workgroup)", async (t) => {
  const gpu = await testGpu();
  // [B, T, H, Dh]: T = 1 and 7 leave most of an invocation's 8 rows past T; T = 65 and 130 start a workgroup
  // of 64 rows with 1 and 2 rows; Dh from 4 to the largest it holds, 64; T = 1025, 2 × 32 is the fixture's tile.
  for (
    const [B, T, H, Dh] of [[1, 1, 1, 4], [2, 7, 3, 20], [1, 65, 2, 36], [2, 130, 3, 64], [1, 1025, 2, 32]]
  ) {
    await t.step(`B=${B} T=${T} H=${H} Dh=${Dh}`, async () => {
      const n = B * T * H * Dh, seed = 4409 + B * 1000 + T * 10 + H + Dh;
      // Scores of a few units, like trained ViT attention, so the softmax is neither flat nor one-hot.
      const q = randomF32(n, seed, -2, 2), k = randomF32(n, seed + 1, -2, 2), v = randomF32(n, seed + 2);
      const shape = [B * T, H * Dh];
      const [gq, gk, gv] = [q, k, v].map((x, i) => gpu.uploadTensor("qkv"[i], "f32", shape, x));
      const out = gpu.createTensor("out", "f32", shape);
      const r = gpu.recorder("test");
      attentionFullRows(r, gq, gk, gv, out, { batch: B, tokens: T, numHeads: H, headDim: Dh });
      r.submit();
      assertNormalisedError(
        await gpu.readF32(out),
        attentionFullRef(q, k, v, B, T, H, Dh),
        tolerance.attention.nerr,
      );
      [gq, gk, gv, out].forEach((x) => x.buffer.destroy());
    });
  }
});

Deno.test("attentionFullRows rejects head dims it cannot hold", async () => {
  const gpu = await testGpu();
  const x = gpu.createTensor("x", "f32", [2, 68]);
  assert.throws(
    () => attentionFullRows(gpu.recorder("t"), x, x, x, x, { batch: 1, tokens: 2, numHeads: 1, headDim: 68 }),
    /head dim 68 is not supported/,
  );
});
