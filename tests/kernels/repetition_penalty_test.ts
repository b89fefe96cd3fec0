import assert from "node:assert/strict";
import { markSeen, repetitionPenalty } from "../../src/ops/repetition_penalty.ts";
import { markSeenRef, repetitionPenaltyRef } from "../../src/ref/repetition_penalty.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

function randomIds(n: number, V: number, seed: number): Int32Array {
  const draw = rng(seed);
  // Mostly valid ids, with repeats, some −1 (skipped) and some past the vocab (skipped).
  return Int32Array.from({ length: n }, () => {
    const u = draw();
    return u < 0.1 ? -1 : u < 0.15 ? V + 3 : Math.floor(draw() * Math.min(V, 50));
  });
}

Deno.test("markSeen then repetitionPenalty match HF's processor on [B, L] prompts and [B] steps", async (t) => {
  const gpu = await testGpu();
  for (const [B, V, L] of [[1, 7, 1], [3, 300, 17], [2, 92553, 40]]) {
    await t.step(`B=${B} V=${V} L=${L}`, async () => {
      const logits = randomF32(B * V, B + V + L, -8, 8);
      const prompt = randomIds(B * L, V, V + 1);
      const step = randomIds(B, V, V + 2);
      const seen = gpu.createTensor("seen", "u32", [B, V]);
      gpu.writeTensor(seen, new Uint32Array(B * V));
      const gl = gpu.uploadTensor("logits", "f32", [B, V], logits);
      const r = gpu.recorder("test");
      markSeen(r, gpu.uploadTensor("prompt", "i32", [B, L], prompt), seen);
      markSeen(r, gpu.uploadTensor("step", "i32", [B], step), seen);
      repetitionPenalty(r, gl, seen, 1.3);
      r.submit();
      const wantSeen = markSeenRef(step, markSeenRef(prompt, new Uint32Array(B * V), B, V), B, V);
      assert.deepEqual(await gpu.readU32(seen), wantSeen);
      const tol = tolerance.elementwise;
      assertClose(await gpu.readF32(gl), repetitionPenaltyRef(logits, wantSeen, 1.3), tol.atol, tol.rtol);
    });
  }
});

Deno.test("repetitionPenalty pushes seen logits towards less likely on both signs", () => {
  const out = repetitionPenaltyRef(new Float32Array([2, -2, 2]), new Uint32Array([1, 1, 0]), 2);
  assert.deepEqual([...out], [1, -4, 2]);
});
