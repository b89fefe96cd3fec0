import assert from "node:assert/strict";
import { attentionCausal, createAttentionScratch } from "../../src/ops/attention_causal.ts";
import { attentionCausalRef } from "../../src/ref/attention_causal.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { packBf16, roundBf16 } from "../../src/ref/kv_bf16.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
import type { Gpu } from "../../src/gpu/device.ts";
import { tolerance } from "./tolerances.ts";

interface Case {
  name: string;
  B: number;
  T: number;
  S: number;
  startPos: number;
  H: number;
  Hkv: number;
  Dh: number;
  pad?: number[]; // left padding per sample
  splits?: number; // forced split count (needs scratch)
  scratch?: boolean;
}

const cases: Case[] = [
  { name: "prefill from 0, GQA 2", B: 1, T: 37, S: 40, startPos: 0, H: 4, Hkv: 2, Dh: 16 },
  { name: "T=1 first token", B: 1, T: 1, S: 3, startPos: 0, H: 2, Hkv: 1, Dh: 8 },
  { name: "left-padded batch prefill", B: 2, T: 20, S: 24, startPos: 0, H: 4, Hkv: 2, Dh: 32, pad: [7, 0] },
  { name: "chunked prefill, GQA 6", B: 1, T: 9, S: 70, startPos: 50, H: 12, Hkv: 2, Dh: 32 },
  { name: "MHA, Dh=20", B: 2, T: 5, S: 11, startPos: 3, H: 3, Hkv: 3, Dh: 20, pad: [2, 4] },
  {
    name: "decode, real head layout, automatic split-K",
    B: 1,
    T: 1,
    S: 700,
    startPos: 650,
    H: 48,
    Hkv: 8,
    Dh: 128,
    scratch: true,
  },
  {
    name: "batched decode, padding, automatic split-K",
    B: 2,
    T: 1,
    S: 333,
    startPos: 300,
    H: 6,
    Hkv: 2,
    Dh: 64,
    pad: [45, 0],
    scratch: true,
  },
  {
    name: "prefill with forced split-K (splits without keys for early rows)",
    B: 2,
    T: 37,
    S: 130,
    startPos: 60,
    H: 4,
    Hkv: 2,
    Dh: 16,
    pad: [70, 3],
    splits: 4,
    scratch: true,
  },
];

/**
 * Runs case c on the GPU against the CPU reference. bf16: the cache is stored in bf16 (KV_CACHE_DTYPE=bf16),
 * and the reference reads the same values rounded, at the same tolerance.
 */
async function check(gpu: Gpu, c: Case, bf16: boolean): Promise<void> {
  const { B, T, S, startPos, H, Hkv, Dh } = c;
  const seed = B * 7 + T * 11 + S * 13 + H + Dh + (bf16 ? 5 : 0);
  const q = randomF32(B * T * H * Dh, seed, -2, 2);
  // The whole cache is random: positions past startPos+T must be ignored, not merely zero.
  const k = randomF32(B * S * Hkv * Dh, seed + 1, -2, 2);
  const v = randomF32(B * S * Hkv * Dh, seed + 2);
  const valid = new Int32Array(B * S).fill(1);
  c.pad?.forEach((n, b) => valid.fill(0, b * S, b * S + n));
  const cache = (label: string, x: Float32Array) =>
    bf16
      ? gpu.uploadTensor(label, "bf16x2", [B, S, Hkv * Dh], packBf16(x))
      : gpu.uploadTensor(label, "f32", [B, S, Hkv * Dh], x);
  const gq = gpu.uploadTensor("q", "f32", [B * T, H * Dh], q);
  const gm = gpu.uploadTensor("valid", "i32", [B, S], valid);
  const out = gpu.createTensor("out", "f32", [B * T, H * Dh]);
  const scratch = c.scratch
    ? createAttentionScratch(gpu, "scratch", { batch: B, tokens: T, numHeads: H, headDim: Dh, maxSplits: 8 })
    : undefined;
  const r = gpu.recorder("test");
  attentionCausal(r, gq, cache("k", k), cache("v", v), gm, out, {
    batch: B,
    tokens: T,
    startPos,
    numHeads: H,
    numKvHeads: Hkv,
    headDim: Dh,
    scratch,
    splits: c.splits,
  });
  if (c.scratch) assert.equal(r.size, 2, "split-K records the attention and the combine pass");
  r.submit();
  const got = await gpu.readF32(out);
  const [kr, vr] = bf16 ? [roundBf16(k), roundBf16(v)] : [k, v];
  const want = attentionCausalRef(q, kr, vr, valid, { B, T, S, startPos, H, Hkv, Dh });
  assert.ok(got.every(Number.isFinite), "no NaN/Inf, fully padded rows included");
  assertNormalisedError(got, want, tolerance.attention.nerr);
  // Fully padded query rows (sample 0 of the padded prefill) must be exact zeros.
  const padded = c.pad ? Math.max(0, c.pad[0] - startPos) : 0;
  for (let i = 0; i < Math.min(padded, T) * H * Dh; i++) assert.equal(got[i], 0);
}

Deno.test("attentionCausal matches the CPU reference (prefill, chunked, decode, padding, split-K)", async (t) => {
  const gpu = await testGpu();
  for (const c of cases) await t.step(c.name, () => check(gpu, c, false));
});

Deno.test("attentionCausal reads a bf16 cache as the reference reads the same values rounded to bf16", async (t) => {
  const gpu = await testGpu();
  for (const c of cases.filter((c) => /^(left-padded|decode)/.test(c.name) || c.splits !== undefined)) {
    await t.step(c.name, () => check(gpu, c, true));
  }
});

Deno.test("attentionCausal refuses splits its scratch cannot hold and queries outside the cache", async () => {
  const gpu = await testGpu();
  const q = gpu.createTensor("q", "f32", [1, 8]);
  const kv = gpu.createTensor("kv", "f32", [1, 4, 8]);
  const m = gpu.createTensor("m", "i32", [1, 4]);
  const shape = { batch: 1, tokens: 1, startPos: 3, numHeads: 1, numKvHeads: 1, headDim: 8 };
  assert.throws(
    () => attentionCausal(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, splits: 2 }),
    /2 splits/,
  );
  assert.throws(
    () => attentionCausal(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, startPos: 4 }),
    /queries at 4…4 lie outside a cache of 4/,
  );
});
