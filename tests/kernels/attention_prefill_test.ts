import assert from "node:assert/strict";
import type { Gpu } from "../../src/gpu/device.ts";
import type { Recorder } from "../../src/gpu/recorder.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  attentionPrefill,
  type AttentionPrefillConfig,
  attentionPrefillConfigs,
  attentionPrefillScratchFloats,
  type AttentionPrefillShape,
  attentionPrefillSplits,
} from "../../src/ops/attention_prefill.ts";
import { attentionCausalRef } from "../../src/ref/attention_causal.ts";
import { randomF32 } from "../../src/ref/random.ts";
import { packBf16, roundBf16 } from "../../src/ref/kv_bf16.ts";
import { defaultAttentionPrefillConfig } from "../../src/ops/attention_prefill.ts";
import { attentionPrefillRows } from "../../src/ops/attention_prefill_rows.ts";
import { queryRowsHold } from "../../src/ops/query_rows.ts";
import { assertNormalisedError, testGpu } from "./check.ts";
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
}

// G = H/Hkv ∈ {1, 6, 8}; T = 1 and sizes that don't divide the 32/64-row tiles or the 32-key blocks.
const cases: Case[] = [
  { name: "T=1 first token, G 6, Dh 64", B: 1, T: 1, S: 1, startPos: 0, H: 6, Hkv: 1, Dh: 64 },
  {
    name: "T=1 continued, padded batch, G 8",
    B: 2,
    T: 1,
    S: 50,
    startPos: 45,
    H: 8,
    Hkv: 1,
    Dh: 128,
    pad: [10, 0],
  },
  { name: "T=37 from 0, MHA, Dh 64", B: 1, T: 37, S: 40, startPos: 0, H: 3, Hkv: 3, Dh: 64 },
  {
    name: "T=37 continued, padded batch (5 rows see no key), G 6",
    B: 2,
    T: 37,
    S: 90,
    startPos: 45,
    H: 12,
    Hkv: 2,
    Dh: 128,
    pad: [50, 3],
  },
  {
    name: "T=130 from 0, padded batch (70 rows see no key), G 8",
    B: 2,
    T: 130,
    S: 131,
    startPos: 0,
    H: 8,
    Hkv: 1,
    Dh: 128,
    pad: [70, 0],
  },
  { name: "T=130 continued, G 6, Dh 64", B: 1, T: 130, S: 180, startPos: 45, H: 6, Hkv: 1, Dh: 64 },
  { name: "T=200 from 0, G 6", B: 1, T: 200, S: 200, startPos: 0, H: 12, Hkv: 2, Dh: 128 },
  {
    name: "T=200 continued, padded batch, MHA, Dh 64",
    B: 2,
    T: 200,
    S: 260,
    startPos: 45,
    H: 2,
    Hkv: 2,
    Dh: 64,
    pad: [20, 60],
  },
  {
    name: "T=37 continued, G 8, Dh 20 (partial stage)",
    B: 1,
    T: 37,
    S: 99,
    startPos: 45,
    H: 8,
    Hkv: 1,
    Dh: 20,
  },
  {
    name: "T=37 continued, padded batch (5 rows see no key), G 2, Dh 16 (the tiny model's heads)",
    B: 2,
    T: 37,
    S: 90,
    startPos: 45,
    H: 4,
    Hkv: 2,
    Dh: 16,
    pad: [50, 3],
  },
];

const configName = (c: AttentionPrefillConfig) =>
  `BQ ${c.queryTile}, ${c.rows} rows${c.prefetch ? ", prefetch" : ""}`;

type Launch = (
  r: Recorder,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  valid: Tensor,
  out: Tensor,
  shape: AttentionPrefillShape,
) => void;

/** Every tiling of attentionPrefill, and attentionPrefillRows (the CPU adapters' form) where Dh fits it. */
function launches(Dh: number): [string, Launch][] {
  const tiled = attentionPrefillConfigs.map((c): [string, Launch] => [
    configName(c),
    (r, q, k, v, valid, out, shape) => attentionPrefill(r, q, k, v, valid, out, shape, c),
  ]);
  return queryRowsHold(Dh) ? [...tiled, ["rows (CPU adapters)", attentionPrefillRows]] : tiled;
}

/**
 * A case's random queries and cache (padding rows and rows past the chunk NaN, which must never leak) and
 * the reference output.
 */
function inputsOf(c: Case) {
  const { B, T, S, startPos, H, Hkv, Dh } = c;
  const seed = B * 7 + T * 11 + S * 13 + H + Dh;
  const q = randomF32(B * T * H * Dh, seed, -2, 2);
  const k = randomF32(B * S * Hkv * Dh, seed + 1, -2, 2);
  const v = randomF32(B * S * Hkv * Dh, seed + 2);
  const valid = new Int32Array(B * S).fill(1);
  c.pad?.forEach((n, b) => valid.fill(0, b * S, b * S + n));
  const W = Hkv * Dh;
  for (let b = 0; b < B; b++) {
    for (let pos = 0; pos < S; pos++) {
      if (valid[b * S + pos] && pos < startPos + T) continue;
      k.fill(NaN, (b * S + pos) * W, (b * S + pos + 1) * W);
      v.fill(NaN, (b * S + pos) * W, (b * S + pos + 1) * W);
    }
  }
  return { q, k, v, valid, want: attentionCausalRef(q, k, v, valid, { B, T, S, startPos, H, Hkv, Dh }) };
}

/** A case's inputs on the GPU (f32 cache), an output tensor, the reference and the launch's shape. */
function uploaded(gpu: Gpu, c: Case) {
  const { B, T, S, startPos, H, Hkv, Dh } = c;
  const { q, k, v, valid, want } = inputsOf(c);
  const W = Hkv * Dh;
  const tensors = {
    q: gpu.uploadTensor("q", "f32", [B * T, H * Dh], q),
    k: gpu.uploadTensor("k", "f32", [B, S, W], k),
    v: gpu.uploadTensor("v", "f32", [B, S, W], v),
    valid: gpu.uploadTensor("valid", "i32", [B, S], valid),
    out: gpu.createTensor("out", "f32", [B * T, H * Dh]),
  };
  const shape: AttentionPrefillShape = {
    batch: B,
    tokens: T,
    startPos,
    numHeads: H,
    numKvHeads: Hkv,
    headDim: Dh,
  };
  return {
    ...tensors,
    want,
    shape,
    destroy: () => Object.values(tensors).forEach((x) => x.buffer.destroy()),
  };
}

/** The output against the reference; the query rows of sample 0 that see only padding must be exact zeros. */
function checkOutput(got: Float32Array, want: Float64Array | Float32Array, c: Case): void {
  assert.ok(got.every(Number.isFinite), "no NaN/Inf, fully padded rows included");
  assertNormalisedError(got, want, tolerance.attention.nerr);
  const padded = c.pad ? Math.max(0, c.pad[0] - c.startPos) : 0;
  for (let i = 0; i < Math.min(padded, c.T) * c.H * c.Dh; i++) assert.equal(got[i], 0);
}

Deno.test("attentionPrefill matches the CPU reference in every tiling (odd lengths, continued, padding, GQA)", async (t) => {
  const gpu = await testGpu();
  for (const c of cases) {
    const u = uploaded(gpu, c);
    for (const [name, launch] of launches(c.Dh)) {
      await t.step(`${c.name}; ${name}`, async () => {
        // Stale NaN in the output must be overwritten, fully masked rows included.
        gpu.writeTensor(u.out, new Float32Array(u.out.numel).fill(NaN));
        const r = gpu.recorder("test");
        launch(r, u.q, u.k, u.v, u.valid, u.out, u.shape);
        r.submit();
        checkOutput(await gpu.readF32(u.out), u.want, c);
      });
    }
    u.destroy();
  }
});

Deno.test("attentionPrefill with the keys split matches the reference: partial rows, empty splits, padding", async (t) => {
  // Splits cut every block range: the first tile of "T=130 continued" sees keys up to 108, so of 3 splits of
  // 64 its last is empty; padded rows see no key in some splits. The scratch starts as 7s (a stale l > 0 would
  // count): every partial row a split owns, an empty one's l included, must be written.
  const gpu = await testGpu();
  // One split too: its rows go through the partial rows and the combine pass like any split's.
  const splitCases: [Case, number][] = [
    [cases[3], 3],
    [cases[5], 3],
    [cases[5], 5],
    [cases[7], 2],
    [cases[9], 2],
    [cases[9], 1],
  ];
  for (const [c, splits] of splitCases) {
    const u = uploaded(gpu, c);
    const scratch = gpu.createTensor("partial", "f32", [splits * c.B * c.T * c.H * (c.Dh + 2)]);
    for (const config of [defaultAttentionPrefillConfig, attentionPrefillConfigs[7]]) {
      await t.step(`${c.name}; ${splits} splits; ${configName(config)}`, async () => {
        gpu.writeTensor(u.out, new Float32Array(u.out.numel).fill(NaN));
        gpu.writeTensor(scratch, new Float32Array(scratch.numel).fill(7));
        const r = gpu.recorder("test");
        attentionPrefill(r, u.q, u.k, u.v, u.valid, u.out, { ...u.shape, scratch, splits }, config);
        const launched = r.recorded.map((d) => d.kernel);
        assert.deepEqual(launched, ["attention_prefill", "attention_causal_combine"]);
        r.submit();
        checkOutput(await gpu.readF32(u.out), u.want, c);
      });
    }
    u.destroy();
    scratch.buffer.destroy();
  }
});

Deno.test("attentionPrefill splits the keys where the tiles are few, within attentionPrefillScratchFloats", () => {
  const real = { batch: 1, numHeads: 48, numKvHeads: 8 };
  // A follow-up round of 31 ids after 1842 kept tokens: 8 kv groups × 3 tiles of 64 rows.
  assert.equal(attentionPrefillSplits({ ...real, tokens: 31, startPos: 1842, headDim: 128 }), 11);
  // A prompt of its own fills the GPU with tiles: no partial rows.
  assert.equal(attentionPrefillSplits({ ...real, tokens: 1800, startPos: 0, headDim: 128 }), 0);
  // Few keys: at least 64 a split, and at least one (partial rows whenever the tiles are few).
  assert.equal(attentionPrefillSplits({ ...real, tokens: 40, startPos: 0, headDim: 128 }), 1);
  assert.equal(attentionPrefillSplits({ ...real, tokens: 40, startPos: 100, headDim: 128 }), 2);
  for (const batch of [1, 2, 3, 5, 8]) {
    for (let tokens = 1; tokens <= 400; tokens += 3) {
      for (const [H, Hkv] of [[48, 8], [4, 2], [12, 12]]) {
        const shape = { batch, tokens, startPos: 5000, numHeads: H, numKvHeads: Hkv, headDim: 128 };
        for (const config of attentionPrefillConfigs) {
          const splits = attentionPrefillSplits(shape, config);
          const rows = batch * tokens * H;
          // 0: no partial rows.
          if (splits > 0) {
            assert.ok(splits * rows * 130 <= attentionPrefillScratchFloats(128), `${JSON.stringify(shape)}`);
          }
        }
      }
    }
  }
});

Deno.test("attentionPrefill reads a bf16 cache as the reference reads the same values rounded to bf16", async (t) => {
  const gpu = await testGpu();
  for (const c of [cases[3], cases[8], cases[9]]) {
    const rows = queryRowsHold(c.Dh) ? [false, true] : [false];
    for (const byRows of rows) {
      await t.step(`${c.name}${byRows ? "; rows (CPU adapters)" : ""}`, async () => {
        const { B, T, S, startPos, H, Hkv, Dh } = c;
        const W = Hkv * Dh, seed = B * 5 + T * 3 + S + H + Dh;
        const q = randomF32(B * T * H * Dh, seed, -2, 2);
        const k = randomF32(B * S * W, seed + 1, -2, 2), v = randomF32(B * S * W, seed + 2);
        const valid = new Int32Array(B * S).fill(1);
        c.pad?.forEach((n, b) => valid.fill(0, b * S, b * S + n));
        // NaN in the padded rows stays NaN in bf16, and must not leak either.
        c.pad?.forEach((n, b) => [k, v].forEach((x) => x.fill(NaN, b * S * W, (b * S + n) * W)));
        const want = attentionCausalRef(q, roundBf16(k), roundBf16(v), valid, {
          B,
          T,
          S,
          startPos,
          H,
          Hkv,
          Dh,
        });
        const out = gpu.createTensor("out", "f32", [B * T, H * Dh]);
        const r = gpu.recorder("test");
        const launch: Launch = byRows
          ? attentionPrefillRows
          : (r, q, k, v, m, o, shape) =>
            attentionPrefill(r, q, k, v, m, o, shape, defaultAttentionPrefillConfig);
        launch(
          r,
          gpu.uploadTensor("q", "f32", [B * T, H * Dh], q),
          gpu.uploadTensor("k", "bf16x2", [B, S, W], packBf16(k)),
          gpu.uploadTensor("v", "bf16x2", [B, S, W], packBf16(v)),
          gpu.uploadTensor("valid", "i32", [B, S], valid),
          out,
          { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh },
        );
        r.submit();
        const got = await gpu.readF32(out);
        assert.ok(got.every(Number.isFinite), "no NaN/Inf");
        assertNormalisedError(got, want, tolerance.attention.nerr);
      });
    }
  }
});

Deno.test("attentionPrefill refuses queries outside the cache and head counts that do not group", async () => {
  const gpu = await testGpu();
  const q = gpu.createTensor("q", "f32", [1, 8]);
  const kv = gpu.createTensor("kv", "f32", [1, 4, 8]);
  const m = gpu.createTensor("m", "i32", [1, 4]);
  const shape = { batch: 1, tokens: 1, startPos: 3, numHeads: 1, numKvHeads: 1, headDim: 8 };
  assert.throws(
    () => attentionPrefill(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, startPos: 4 }),
    /queries at 4…4 lie outside a cache of 4/,
  );
  assert.throws(
    () => attentionPrefill(gpu.recorder("t"), q, kv, kv, m, q, { ...shape, numHeads: 2, numKvHeads: 3 }),
    /2 query heads do not split into 3 kv groups/,
  );
});
