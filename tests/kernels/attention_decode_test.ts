import assert from "node:assert/strict";
import {
  attentionDecode,
  createAttentionDecodeScratch,
  decodeSplits,
} from "../../src/ops/attention_decode.ts";
import { attentionCausalRef } from "../../src/ref/attention_causal.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

interface Case {
  B: number;
  S: number; // cache capacity
  kvLen: number; // attended positions 0 … kvLen−1
  H: number;
  Hkv: number;
  Dh: number;
  pad?: number[]; // left padding per sample (pad ≥ kvLen: a sample with no valid key)
  splits?: number; // forced split count
  scratch?: boolean;
}

const cases: Case[] = [
  { B: 1, S: 1, kvLen: 1, H: 12, Hkv: 2, Dh: 128, scratch: true },
  { B: 3, S: 7, kvLen: 7, H: 4, Hkv: 2, Dh: 64, pad: [2, 0, 6] },
  { B: 1, S: 33, kvLen: 30, H: 12, Hkv: 2, Dh: 128 },
  { B: 3, S: 33, kvLen: 33, H: 12, Hkv: 2, Dh: 64, pad: [0, 40, 17], scratch: true, splits: 3 },
  { B: 1, S: 1000, kvLen: 999, H: 48, Hkv: 8, Dh: 128, scratch: true },
  { B: 3, S: 1000, kvLen: 1000, H: 4, Hkv: 2, Dh: 128, pad: [333, 0, 5], scratch: true },
  { B: 1, S: 2049, kvLen: 2049, H: 12, Hkv: 2, Dh: 64, scratch: true },
  // Splits 0 … 5 of sample 1 see only padding: their partials must not disturb the combine.
  { B: 3, S: 2049, kvLen: 2001, H: 6, Hkv: 1, Dh: 128, pad: [0, 1500, 2], scratch: true, splits: 9 },
  { B: 1, S: 50, kvLen: 48, H: 6, Hkv: 3, Dh: 20, pad: [3], scratch: true, splits: 2 }, // Dh/4 ∤ 128
];

Deno.test("attentionDecode matches the causal reference at T = 1 (odd lengths, GQA 6 and 2, padding, splits)", async (t) => {
  const gpu = await testGpu();
  for (const c of cases) {
    const { B, S, kvLen, H, Hkv, Dh } = c;
    const name = `B=${B} S=${S} kvLen=${kvLen} H=${H}/${Hkv} Dh=${Dh}` +
      (c.pad ? ` pad=${c.pad}` : "") + (c.splits ? ` splits=${c.splits}` : "");
    await t.step(name, async () => {
      const seed = B * 7 + S * 13 + kvLen + H * 3 + Dh;
      const q = randomF32(B * H * Dh, seed, -2, 2);
      // The whole cache is random: positions at or past kvLen and padded ones must be ignored.
      const k = randomF32(B * S * Hkv * Dh, seed + 1, -2, 2);
      const v = randomF32(B * S * Hkv * Dh, seed + 2);
      const valid = new Int32Array(B * S).fill(1);
      c.pad?.forEach((n, b) => valid.fill(0, b * S, b * S + Math.min(n, S)));
      const gq = gpu.uploadTensor("q", "f32", [B, H * Dh], q);
      const gk = gpu.uploadTensor("k", "f32", [B, S, Hkv * Dh], k);
      const gv = gpu.uploadTensor("v", "f32", [B, S, Hkv * Dh], v);
      const gm = gpu.uploadTensor("valid", "i32", [B, S], valid);
      const out = gpu.uploadTensor("out", "f32", [B, H * Dh], randomF32(B * H * Dh, seed + 3));
      const scratch = c.scratch
        ? createAttentionDecodeScratch(gpu, "scratch", { batch: B, numHeads: H, headDim: Dh })
        : undefined;
      const r = gpu.recorder("test");
      attentionDecode(r, gq, gk, gv, gm, out, {
        batch: B,
        kvLen,
        numHeads: H,
        numKvHeads: Hkv,
        headDim: Dh,
        scratch,
        splits: c.splits,
      });
      const splits = c.splits ?? (scratch ? decodeSplits(kvLen, B, Hkv, scratch.shape[0]).splits : 1);
      assert.equal(r.size, splits > 1 ? 2 : 1, "a combine pass exactly when the keys are split");
      r.submit();
      const got = await gpu.readF32(out);
      const want = attentionCausalRef(q, k, v, valid, { B, T: 1, S, startPos: kvLen - 1, H, Hkv, Dh });
      assert.ok(got.every(Number.isFinite), "no NaN/Inf, fully padded samples included");
      assertNormalisedError(got, want, tolerance.attention.nerr);
      c.pad?.forEach((n, b) => {
        if (n >= kvLen) {
          const row = got.subarray(b * H * Dh, (b + 1) * H * Dh);
          assert.ok(row.every((x) => x === 0), `sample ${b} has no valid key: zeros`);
        }
      });
    });
  }
});

Deno.test("attentionDecode ignores NaN in padded cache rows", async () => {
  const gpu = await testGpu();
  const B = 1, S = 40, kvLen = 37, H = 6, Hkv = 1, Dh = 64;
  const q = randomF32(H * Dh, 5);
  const k = randomF32(S * Dh, 6), v = randomF32(S * Dh, 7);
  const valid = new Int32Array(S).fill(1);
  const draw = rng(8);
  for (let i = 0; i < 5; i++) {
    const pos = Math.floor(draw() * kvLen);
    valid[pos] = 0;
    k.fill(NaN, pos * Dh, (pos + 1) * Dh);
    v.fill(NaN, pos * Dh, (pos + 1) * Dh);
  }
  const out = gpu.createTensor("out", "f32", [B, H * Dh]);
  const r = gpu.recorder("test");
  attentionDecode(
    r,
    gpu.uploadTensor("q", "f32", [B, H * Dh], q),
    gpu.uploadTensor("k", "f32", [B, S, Dh], k),
    gpu.uploadTensor("v", "f32", [B, S, Dh], v),
    gpu.uploadTensor("valid", "i32", [B, S], valid),
    out,
    {
      batch: B,
      kvLen,
      numHeads: H,
      numKvHeads: Hkv,
      headDim: Dh,
      scratch: createAttentionDecodeScratch(gpu, "scratch", { batch: B, numHeads: H, headDim: Dh }),
      splits: 2,
    },
  );
  r.submit();
  const got = await gpu.readF32(out);
  const clean = (x: Float32Array) => x.map((e) => Number.isNaN(e) ? 0 : e);
  const want = attentionCausalRef(q, clean(k), clean(v), valid, {
    B,
    T: 1,
    S,
    startPos: kvLen - 1,
    H,
    Hkv,
    Dh,
  });
  assertNormalisedError(got, want, tolerance.attention.nerr);
});

Deno.test("attentionDecode fills the GPU with splits and refuses what its scratch cannot hold", async () => {
  // InternLM2-20B, batch 1: 8 kv heads × 64 splits ≥ 2 × 132 SMs at 4096 keys; short contexts keep ≥ 32 keys.
  assert.deepEqual(decodeSplits(4096, 1, 8, 128), { splits: 64, chunk: 64 });
  assert.deepEqual(decodeSplits(512, 1, 8, 128), { splits: 16, chunk: 32 });
  assert.deepEqual(decodeSplits(20, 1, 8, 128), { splits: 1, chunk: 32 });
  const gpu = await testGpu();
  const q = gpu.createTensor("q", "f32", [1, 8]);
  const kv = gpu.createTensor("kv", "f32", [1, 4, 8]);
  const m = gpu.createTensor("m", "i32", [1, 4]);
  const shape = { batch: 1, kvLen: 4, numHeads: 1, numKvHeads: 1, headDim: 8 };
  assert.throws(
    () => attentionDecode(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, splits: 2 }),
    /2 splits/,
  );
  assert.throws(
    () => attentionDecode(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, kvLen: 5 }),
    /kvLen 5 must be 1…4/,
  );
  assert.throws(
    () => attentionDecode(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, numHeads: 9 }),
    /9 query heads/,
  );
});
