import assert from "node:assert/strict";
import {
  attentionDecode,
  type AttentionDecodeConfig,
  attentionDecodeConfigs,
  attentionDecodeFromQkv,
  createAttentionDecodeScratch,
  decodeScratchSplits,
  decodeSplits,
  defaultAttentionDecodeConfig,
} from "../../src/ops/attention_decode.ts";
import { attentionCausalRef } from "../../src/ref/attention_causal.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { packBf16, roundBf16, unpackBf16 } from "../../src/ref/kv_bf16.ts";
import { assertClose, assertNormalisedError, firstDifference, testGpu } from "./check.ts";
import { qkvRopeCache } from "../../src/ops/qkv_rope_cache.ts";
import { ropeCosSinRows, ropeTables } from "../../src/ops/rope.ts";
import { tolerance } from "./tolerances.ts";
import {
  createLlmInt8RowsScratch,
  createPairedRowsScratch,
  destroyLlmInt8RowsScratch,
  destroyPairedRowsScratch,
  llmInt8Pack,
  llmInt8PackBlockColumns,
  llmInt8PackGroups,
  llmInt8Rows,
  llmInt8RowsGroups,
  type QuantizedRows,
} from "../../src/ops/matvec_dp4a.ts";

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
  every?: boolean; // also run every tiling of attentionDecodeConfigs, not only the default
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
  // Lengths that are no multiple of the 64- or 32-key tile, GQA 1, 6 and 8, Dh 64 and 128, every tiling.
  { B: 1, S: 1, kvLen: 1, H: 48, Hkv: 8, Dh: 128, scratch: true, every: true },
  { B: 1, S: 40, kvLen: 37, H: 48, Hkv: 8, Dh: 128, scratch: true, every: true },
  { B: 1, S: 517, kvLen: 517, H: 48, Hkv: 8, Dh: 128, scratch: true, every: true },
  { B: 3, S: 530, kvLen: 517, H: 48, Hkv: 8, Dh: 128, pad: [0, 100, 517], scratch: true, every: true },
  { B: 3, S: 600, kvLen: 517, H: 8, Hkv: 8, Dh: 64, pad: [7, 0, 300], scratch: true, every: true }, // G = 1
  { B: 2, S: 517, kvLen: 517, H: 16, Hkv: 2, Dh: 64, pad: [64, 1], scratch: true, every: true }, // G = 8
  { B: 2, S: 300, kvLen: 299, H: 8, Hkv: 1, Dh: 128, pad: [0, 65], every: true }, // G = 8, one split of 5 tiles
  // One split of 9 tiles (online softmax across tiles, prefetch), with padding inside the tiles.
  { B: 3, S: 520, kvLen: 517, H: 12, Hkv: 2, Dh: 128, pad: [0, 37, 200], every: true },
  // 100 splits of 6 keys: the combine merges more than one batch of 4 splits per thread.
  { B: 1, S: 600, kvLen: 600, H: 6, Hkv: 1, Dh: 128, pad: [5], scratch: true, splits: 100, every: true },
  { B: 1, S: 90, kvLen: 77, H: 12, Hkv: 4, Dh: 36, scratch: true, splits: 5, every: true }, // Dh/4 = 9, G = 3
  { B: 1, S: 40, kvLen: 33, H: 4, Hkv: 1, Dh: 16, scratch: true, splits: 2, every: true }, // Dh/4 = 4
];

const configName = (c: AttentionDecodeConfig) => `WG${c.workgroupSize}${c.prefetch ? "" : " no-prefetch"}`;

Deno.test("attentionDecode matches the causal reference at T = 1 (odd lengths, GQA 1–8, padding, splits, tilings)", async (t) => {
  for (const c of cases) {
    const configs = c.every ? attentionDecodeConfigs : [defaultAttentionDecodeConfig];
    for (const config of configs) await runCase(t, c, config);
  }
});

// A bf16 cache (KV_CACHE_DTYPE=bf16): the kernel reads the rounded values, so the reference sees them too and
// the tolerance stays f32's. Odd head widths (Dh/4 = 5), padding, splits, the model's heads.
Deno.test("attentionDecode reads a bf16 cache as the reference reads the same values rounded to bf16", async (t) => {
  const bf16Cases: Case[] = [
    { B: 1, S: 50, kvLen: 48, H: 6, Hkv: 3, Dh: 20, pad: [3], scratch: true, splits: 2 },
    { B: 3, S: 530, kvLen: 517, H: 48, Hkv: 8, Dh: 128, pad: [0, 100, 517], scratch: true },
    { B: 3, S: 33, kvLen: 33, H: 12, Hkv: 2, Dh: 64, pad: [0, 40, 17] },
  ];
  for (const c of bf16Cases) await runCase(t, c, defaultAttentionDecodeConfig, true);
});

async function runCase(t: Deno.TestContext, c: Case, config: AttentionDecodeConfig, bf16 = false) {
  const gpu = await testGpu();
  const { B, S, kvLen, H, Hkv, Dh } = c;
  const name = `B=${B} S=${S} kvLen=${kvLen} H=${H}/${Hkv} Dh=${Dh}` +
    (c.pad ? ` pad=${c.pad}` : "") + (c.splits ? ` splits=${c.splits}` : "") + ` ${configName(config)}` +
    (bf16 ? " bf16" : "");
  await t.step(name, async () => {
    // Fresh inputs per tiling, so no two runs of a shape see the same numbers.
    const seed = B * 7 + S * 13 + kvLen + H * 3 + Dh + 1000 * attentionDecodeConfigs.indexOf(config) +
      (bf16 ? 77 : 0);
    const q = randomF32(B * H * Dh, seed, -2, 2);
    // The whole cache is random: positions at or past kvLen and padded ones must be ignored.
    let k = randomF32(B * S * Hkv * Dh, seed + 1, -2, 2);
    let v = randomF32(B * S * Hkv * Dh, seed + 2);
    const valid = new Int32Array(B * S).fill(1);
    c.pad?.forEach((n, b) => valid.fill(0, b * S, b * S + Math.min(n, S)));
    const gq = gpu.uploadTensor("q", "f32", [B, H * Dh], q);
    const cacheTensor = (label: string, x: Float32Array) =>
      bf16
        ? gpu.uploadTensor(label, "bf16x2", [B, S, Hkv * Dh], packBf16(x))
        : gpu.uploadTensor(label, "f32", [B, S, Hkv * Dh], x);
    const gk = cacheTensor("k", k), gv = cacheTensor("v", v);
    if (bf16) [k, v] = [roundBf16(k), roundBf16(v)];
    const gm = gpu.uploadTensor("valid", "i32", [B, S], valid);
    const out = gpu.uploadTensor("out", "f32", [B, H * Dh], randomF32(B * H * Dh, seed + 3));
    const scratch = c.scratch
      ? createAttentionDecodeScratch(gpu, "scratch", { batch: B, numHeads: H, headDim: Dh })
      : undefined;
    const r = gpu.recorder("test");
    const shape = { batch: B, kvLen, numHeads: H, numKvHeads: Hkv, headDim: Dh, scratch, splits: c.splits };
    attentionDecode(r, gq, gk, gv, gm, out, shape, config);
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
    [gq, gk, gv, gm, out, scratch].forEach((x) => x?.buffer.destroy());
  });
}

// The second shape runs a batch's rows, whose workgroup memory is only what the tiling needs: with Dh/4 = 9
// the last head's column slices read 3 vec4 past its query, which must be zeros, not the NaN partial scores
// of the padded keys next to them.
Deno.test("attentionDecode ignores NaN in padded cache rows", async (t) => {
  const gpu = await testGpu();
  const shapes = [
    { B: 1, S: 40, kvLen: 37, H: 6, Hkv: 1, Dh: 64, splits: 2 },
    { B: 2, S: 90, kvLen: 77, H: 12, Hkv: 4, Dh: 36, splits: 1 },
  ];
  for (const { B, S, kvLen, H, Hkv, Dh, splits } of shapes) {
    await t.step(`B=${B} kvLen=${kvLen} H=${H}/${Hkv} Dh=${Dh} splits=${splits}`, async () => {
      const q = randomF32(B * H * Dh, 5);
      const k = randomF32(B * S * Hkv * Dh, 6), v = randomF32(B * S * Hkv * Dh, 7);
      const valid = new Int32Array(B * S).fill(1);
      const draw = rng(8);
      for (let i = 0; i < 5 * B; i++) {
        const pos = Math.floor(draw() * B * kvLen);
        const row = Math.floor(pos / kvLen) * S + pos % kvLen;
        valid[row] = 0;
        k.fill(NaN, row * Hkv * Dh, (row + 1) * Hkv * Dh);
        v.fill(NaN, row * Hkv * Dh, (row + 1) * Hkv * Dh);
      }
      const out = gpu.createTensor("out", "f32", [B, H * Dh]);
      const r = gpu.recorder("test");
      attentionDecode(
        r,
        gpu.uploadTensor("q", "f32", [B, H * Dh], q),
        gpu.uploadTensor("k", "f32", [B, S, Hkv * Dh], k),
        gpu.uploadTensor("v", "f32", [B, S, Hkv * Dh], v),
        gpu.uploadTensor("valid", "i32", [B, S], valid),
        out,
        {
          batch: B,
          kvLen,
          numHeads: H,
          numKvHeads: Hkv,
          headDim: Dh,
          scratch: createAttentionDecodeScratch(gpu, "scratch", { batch: B, numHeads: H, headDim: Dh }),
          splits,
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
  }
});

Deno.test("attentionDecode fills the GPU with splits and refuses what its scratch cannot hold", async () => {
  // InternLM2-20B (8 kv heads): about 2 workgroups per SM of 132 at 4096 keys for one row, 3 for a batch's
  // rows; short contexts keep ≥ 32 keys per split; a small scratch gets fewer, longer splits.
  assert.deepEqual(decodeSplits(4096, 1, 8, 128), { splits: 32, chunk: 128 });
  assert.deepEqual(decodeSplits(512, 8, 8, 128), { splits: 6, chunk: 96 });
  assert.deepEqual(decodeSplits(512, 1, 8, 128), { splits: 16, chunk: 32 });
  assert.deepEqual(decodeSplits(20, 1, 8, 128), { splits: 1, chunk: 32 });
  assert.deepEqual(decodeSplits(4096, 1, 8, 16), { splits: 16, chunk: 256 });
  // A batch's rows, each its own cache, round down: a few keys past a multiple of the chunk (every decode
  // step after a 512-token prompt) add no split, all rows' and kv heads' splits stay within 3 workgroups per
  // SM of 132 (2 for one row). A chunk of one sequence's rows, one cache, rounds up (8 tokens after 1842: 5
  // splits).
  assert.deepEqual(decodeSplits(520, 8, 8, 128), { splits: 6, chunk: 96 });
  assert.deepEqual(decodeSplits(520, 4, 8, 128), { splits: 9, chunk: 64 });
  assert.deepEqual(decodeSplits(1850, 8, 8, decodeScratchSplits(8, 8, true), true), {
    splits: 5,
    chunk: 384,
  });
  assert.deepEqual(decodeSplits(1850, 8, 8, decodeScratchSplits(8, 8)), { splits: 6, chunk: 320 });
  for (let batch = 1; batch <= 8; batch++) {
    for (const kvLen of [1, 33, 500, 512, 520, 777, 4096, 4100]) {
      const { splits, chunk } = decodeSplits(kvLen, batch, 8, decodeScratchSplits(batch, 8));
      const most = batch === 1 ? 264 : 396;
      assert.ok(splits * batch * 8 <= most, `batch ${batch}, ${kvLen} keys: ${splits} splits`);
      assert.ok(splits * chunk >= kvLen && (splits - 1) * chunk < kvLen, `batch ${batch}, ${kvLen} keys`);
    }
  }
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

Deno.test("attentionDecode gives a batch's rows the workgroup memory their tiling needs, one row and a chunk 18 KiB", async () => {
  // A batch's rows launch up to 3 workgroups per SM and must fit them; one row (2 per SM) and a chunk's
  // rows keep the kernel's former footprint, faster there (PERF.md v54).
  const gpu = await testGpu();
  const H = 48, Hkv = 8, Dh = 128, S = 600, kvLen = 520;
  const recordFor = (B: number, oneSequence: boolean) => {
    const Bc = oneSequence ? 1 : B;
    const kv = gpu.createTensor("kv", "f32", [Bc, S, Hkv * Dh]);
    const r = gpu.recorder("t");
    attentionDecode(
      r,
      gpu.createTensor("q", "f32", [B, H * Dh]),
      kv,
      kv,
      gpu.createTensor("valid", "i32", [Bc, S]),
      gpu.createTensor("out", "f32", [B, H * Dh]),
      {
        batch: B,
        kvLen,
        numHeads: H,
        numKvHeads: Hkv,
        headDim: Dh,
        oneSequence,
        scratch: createAttentionDecodeScratch(gpu, "scratch", { batch: B, numHeads: H, headDim: Dh }),
      },
    );
    const d = r.recorded.find((x) => x.kernel === "attention_decode")!;
    return { smMin: d.constants.SM_MIN, workgroups: d.workgroups.reduce((a, b) => a * b, 1) };
  };
  assert.deepEqual(recordFor(1, false), { smMin: 1152, workgroups: 17 * 8 });
  assert.deepEqual(recordFor(8, false), { smMin: 0, workgroups: 6 * 8 * 8 });
  assert.deepEqual(recordFor(2, false), { smMin: 0, workgroups: 17 * 8 * 2 });
  assert.deepEqual(recordFor(3, true), { smMin: 1152, workgroups: 9 * 8 * 3 });
});

Deno.test("attentionDecode oneSequence: T new tokens of one sequence attend causally like the prefill", async (t) => {
  const gpu = await testGpu();
  // [T, start (keys before the chunk), H, Hkv, Dh, forced splits, padded positions of the kept prefix, bf16
  // cache (KV_CACHE_DTYPE=bf16: the reference then reads the values rounded)]
  const cases: [number, number, number, number, number, number | undefined, number, boolean][] = [
    [8, 1842, 48, 8, 128, undefined, 0, false], // a follow-up round's chunk after a 7-tile conversation
    [5, 37, 12, 2, 64, 4, 3, false], // splits past the first rows' last keys are empty for them
    [3, 0, 6, 1, 36, undefined, 0, false], // the first token sees only itself
    [7, 200, 16, 2, 128, 1, 11, false], // one split: rows normalised in place
    [6, 93, 12, 2, 20, 3, 5, true], // a follow-up chunk over a bf16 cache
  ];
  for (const [T, start, H, Hkv, Dh, splits, pad, bf16] of cases) {
    await t.step(
      `T=${T} start=${start} H=${H}/${Hkv} Dh=${Dh} splits=${splits ?? "auto"} pad=${pad}${
        bf16 ? " bf16" : ""
      }`,
      async () => {
        const S = start + T + 3, seed = T * 31 + start + H + Dh;
        const q = randomF32(T * H * Dh, seed, -2, 2);
        let k = randomF32(S * Hkv * Dh, seed + 1, -2, 2);
        let v = randomF32(S * Hkv * Dh, seed + 2);
        const cache = (label: string, x: Float32Array) =>
          bf16
            ? gpu.uploadTensor(label, "bf16x2", [1, S, Hkv * Dh], packBf16(x))
            : gpu.uploadTensor(label, "f32", [1, S, Hkv * Dh], x);
        const [kT, vT] = [cache("k", k), cache("v", v)];
        if (bf16) [k, v] = [roundBf16(k), roundBf16(v)];
        const valid = new Int32Array(S).fill(1).fill(0, 0, pad);
        const out = gpu.uploadTensor("out", "f32", [T, H * Dh], randomF32(T * H * Dh, seed + 3));
        const scratch = createAttentionDecodeScratch(gpu, "scratch", { batch: T, numHeads: H, headDim: Dh });
        const r = gpu.recorder("test");
        attentionDecode(
          r,
          gpu.uploadTensor("q", "f32", [T, H * Dh], q),
          kT,
          vT,
          gpu.uploadTensor("valid", "i32", [1, S], valid),
          out,
          {
            batch: T,
            kvLen: start + 1,
            numHeads: H,
            numKvHeads: Hkv,
            headDim: Dh,
            scratch,
            splits,
            oneSequence: true,
          },
        );
        r.submit();
        const got = await gpu.readF32(out);
        const want = attentionCausalRef(q, k, v, valid, { B: 1, T, S, startPos: start, H, Hkv, Dh });
        assertNormalisedError(got, want, tolerance.attention.nerr);
      },
    );
  }
});

Deno.test("attentionDecodeFromQkv equals qkvRopeCache then attentionDecode (outputs and both caches)", async (t) => {
  const gpu = await testGpu();
  const P = 700;
  // [B, S, kvLen, H, Hkv, Dh, left padding per sample, forced splits]: the model's heads with auto splits;
  // padding (a sample with no valid key but the new one) and the new key in the last of 3 splits; the new
  // key alone (kvLen 1, Dh 8: one vec4 per half); an odd number of vec4 per half (Dh 24), G = 8, 7 splits.
  const cases: [number, number, number, number, number, number, number[], number | undefined][] = [
    [1, 600, 517, 48, 8, 128, [0], undefined],
    [3, 40, 33, 12, 2, 64, [0, 5, 32], 3],
    [2, 9, 1, 6, 3, 8, [0, 0], 1],
    [3, 130, 100, 8, 1, 24, [2, 0, 50], 7],
  ];
  for (const [B, S, kvLen, H, Hkv, Dh, pad, splits] of cases) {
    await t.step(
      `B=${B} S=${S} kvLen=${kvLen} H=${H}/${Hkv} Dh=${Dh} pad=${pad} splits=${splits ?? "auto"}`,
      async () => {
        const G = H / Hkv, W = Hkv * Dh, seed = B * 3 + S + kvLen * 7 + H + Dh;
        const qkv = randomF32(B * Hkv * (G + 2) * Dh, seed, -2, 2);
        const draw = rng(seed + 1);
        // Rotary positions are not the cache index (left padding), one at the table's end.
        const positions = Int32Array.from({ length: B }, (_, b) => b === 0 ? P - 1 : Math.floor(draw() * P));
        const k = randomF32(B * S * W, seed + 2, -2, 2), v = randomF32(B * S * W, seed + 3);
        const valid = new Int32Array(B * S).fill(1);
        pad.forEach((n, b) => valid.fill(0, b * S, b * S + n));
        const tables = ropeTables(1e6, Dh, P);
        const up = (label: string, dtype: "f32" | "i32", shape: number[], data: Float32Array | Int32Array) =>
          gpu.uploadTensor(label, dtype, shape, data);
        const gqkv = up("qkv", "f32", [B, Hkv * (G + 2) * Dh], qkv);
        const gpos = up("positions", "i32", [B], positions);
        const gvalid = up("valid", "i32", [B, S], valid);
        const shape = { batch: B, kvLen, numHeads: H, numKvHeads: Hkv, headDim: Dh, splits };
        const run = async (fused: boolean) => {
          const kCache = up("k", "f32", [B, S, W], k), vCache = up("v", "f32", [B, S, W], v);
          const out = up("out", "f32", [B, H * Dh], randomF32(B * H * Dh, seed + 4));
          const scratch = createAttentionDecodeScratch(gpu, "scratch", {
            batch: B,
            numHeads: H,
            headDim: Dh,
          });
          const r = gpu.recorder(fused ? "fused" : "two passes");
          if (fused) {
            const cosSin = up("cos_sin", "f32", [P, Dh], ropeCosSinRows(tables, Dh));
            attentionDecodeFromQkv(r, gqkv, { positions: gpos, cosSin }, kCache, vCache, gvalid, out, {
              ...shape,
              scratch,
            });
          } else {
            const cos = up("cos", "f32", [P, Dh / 2], tables.cos),
              sin = up("sin", "f32", [P, Dh / 2], tables.sin);
            const q = gpu.createTensor("q", "f32", [B, H * Dh]);
            qkvRopeCache(r, gqkv, gpos, cos, sin, q, kCache, vCache, {
              batch: B,
              tokens: 1,
              startPos: kvLen - 1,
              numHeads: H,
              numKvHeads: Hkv,
              headDim: Dh,
            });
            attentionDecode(r, q, kCache, vCache, gvalid, out, { ...shape, scratch });
          }
          r.submit();
          return { out: await gpu.readF32(out), k: await gpu.readF32(kCache), v: await gpu.readF32(vCache) };
        };
        const want = await run(false), got = await run(true);
        assertNormalisedError(got.out, want.out, tolerance.attention.nerr);
        assertClose(got.k, want.k, tolerance.elementwise.atol, tolerance.elementwise.rtol);
        assertClose(got.v, want.v, 0, 0);
      },
    );
  }
});

Deno.test("attentionDecodeFromQkv into a bf16 cache writes the f32 kernel's new key and value rounded", async (t) => {
  const gpu = await testGpu();
  const P = 300;
  // [B, S, kvLen, H, Hkv, Dh, left padding per sample]: the model's heads (pipelines the tests above built
  // already, but the bf16 FUSED one), a batch with padding.
  const cases: [number, number, number, number, number, number, number[]][] = [
    [3, 130, 100, 48, 8, 128, [2, 0, 50]],
  ];
  for (const [B, S, kvLen, H, Hkv, Dh, pad] of cases) {
    await t.step(`B=${B} S=${S} kvLen=${kvLen} H=${H}/${Hkv} Dh=${Dh} pad=${pad}`, async () => {
      const W = Hkv * Dh, seed = 5 * B + S + 3 * kvLen + H + Dh;
      const qkv = gpu.uploadTensor(
        "qkv",
        "f32",
        [B, (H + 2 * Hkv) * Dh],
        randomF32(B * (H + 2 * Hkv) * Dh, seed),
      );
      const draw = rng(seed + 1);
      const positions = gpu.uploadTensor("pos", "i32", [B], Int32Array.from({ length: B }, () => draw() * P));
      const cosSin = gpu.uploadTensor("cos_sin", "f32", [P, Dh], ropeCosSinRows(ropeTables(1e6, Dh, P), Dh));
      const valid = new Int32Array(B * S).fill(1);
      pad.forEach((n, b) => valid.fill(0, b * S, b * S + n));
      const gvalid = gpu.uploadTensor("valid", "i32", [B, S], valid);
      // The cache before: bf16 values (the f32 run starts from them widened, so untouched words round-trip).
      const before = [packBf16(randomF32(B * S * W, seed + 2)), packBf16(randomF32(B * S * W, seed + 3))];
      const shape = { batch: B, kvLen, numHeads: H, numKvHeads: Hkv, headDim: Dh };
      const run = async (fused: boolean, bf16: boolean) => {
        const [k, v] = before.map((w, i) =>
          bf16
            ? gpu.uploadTensor(`cache${i}`, "bf16x2", [B, S, W], w)
            : gpu.uploadTensor(`cache${i}`, "f32", [B, S, W], unpackBf16(w))
        );
        const out = gpu.createTensor("out", "f32", [B, H * Dh]);
        const scratch = createAttentionDecodeScratch(gpu, "scratch", { batch: B, numHeads: H, headDim: Dh });
        const r = gpu.recorder("test");
        if (fused) {
          attentionDecodeFromQkv(r, qkv, { positions, cosSin }, k, v, gvalid, out, { ...shape, scratch });
        } else {
          const tables = ropeTables(1e6, Dh, P);
          const cos = gpu.uploadTensor("cos", "f32", [P, Dh / 2], tables.cos);
          const sin = gpu.uploadTensor("sin", "f32", [P, Dh / 2], tables.sin);
          const q = gpu.createTensor("q", "f32", [B, H * Dh]);
          qkvRopeCache(r, qkv, positions, cos, sin, q, k, v, { ...shape, tokens: 1, startPos: kvLen - 1 });
          attentionDecode(r, q, k, v, gvalid, out, { ...shape, scratch });
        }
        r.submit();
        const words = (x: typeof k) => bf16 ? gpu.readU32(x) : gpu.readF32(x).then(packBf16);
        return { out: await gpu.readF32(out), k: await words(k), v: await words(v) };
      };
      const f32Fused = await run(true, false),
        twoPasses = await run(false, true),
        got = await run(true, true);
      assert.deepEqual(got.k, f32Fused.k, "k cache words: the f32 kernel's rotated key, rounded");
      assert.deepEqual(got.v, f32Fused.v, "v cache words: the value, rounded");
      // This step attends to its new key and value as stored (rounded), like the two passes.
      assertNormalisedError(got.out, twoPasses.out, tolerance.attention.nerr);
    });
  }
});

Deno.test("attentionDecode's combine pass leaves the LLM.int8 rows scan of its output", async (t) => {
  // With `scan`, the combine takes head h of every row in one workgroup and leaves that block's column bits,
  // row maxima below θ and outlier count: the pack after it must give what the rows scan + pack over the
  // output give, bit for bit (int8 rows, scales, outlier list, column bits).
  const gpu = await testGpu();
  const scanCases = [
    { B: 1, kvLen: 517, H: 48, Hkv: 8, Dh: 128, pad: [0] }, // one row a workgroup, 8 split groups
    { B: 3, kvLen: 300, H: 12, Hkv: 2, Dh: 128, pad: [0, 37, 200] }, // 4 rows a workgroup (one idle)
    { B: 8, kvLen: 100, H: 6, Hkv: 3, Dh: 64, pad: [0, 1, 2, 3, 4, 5, 6, 99] },
    { B: 5, kvLen: 70, H: 4, Hkv: 1, Dh: 16, pad: [0, 9, 0, 3, 0] }, // 8 heads to one pack block
    // A follow-up chunk: 6 new tokens of one kept sequence as rows, row b seeing kvLen + b keys.
    { B: 6, kvLen: 200, H: 12, Hkv: 2, Dh: 128, pad: [4], one: true },
  ];
  for (const c of scanCases) {
    const name = `B=${c.B} kvLen=${c.kvLen} H=${c.H}/${c.Hkv} Dh=${c.Dh}${c.one ? " one sequence" : ""}`;
    await t.step(name, async () => {
      const { B, H, Dh } = c;
      const { q, k, v, m, splits, shape, K, outs, plain, threshold } = await scanInputs(gpu, c);
      const [byCombine, byPass] = [1, 2].map((i) => createLlmInt8RowsScratch(gpu, `rows${i}`, 8, K));
      const r = gpu.recorder("test");
      const scan = { scratch: byCombine, threshold };
      const scanned = attentionDecode(r, q, k, v, m, outs[1], { ...shape, scan });
      assert.ok(scanned && !("joint" in scanned), "the combine scanned one group");
      assert.deepEqual(
        [scanned.rows, scanned.K, scanned.values, scanned.blocks, scanned.perPackBlock],
        [B, K, outs[1], H, llmInt8PackBlockColumns / (Dh / 4)],
        "one block a head, 32/D4 heads to a pack block",
      );
      llmInt8Pack(r, scanned);
      llmInt8Rows(r, outs[1], byPass, { threshold });
      r.submit();
      assertClose(await gpu.readF32(outs[1]), plain, 1e-7, 1e-6);
      const list = await gpu.readU32(byPass.outliers);
      assert.ok(list[0] >= 2 && list[0] < K / 2, `${list[0]} outlier columns of ${K}`);
      assert.deepEqual(await gpu.readU32(byCombine.outliers), list, "outlier list");
      const bits = [byCombine, byPass].map(async (s) => (await gpu.readU32(s.colbits)).subarray(0, K / 4));
      assert.deepEqual(await bits[0], await bits[1], "column bits");
      const qs = [byCombine, byPass].map(async (s) =>
        new Int8Array(await gpu.readBytes(s.q)).subarray(0, B * K)
      );
      assert.deepEqual(await qs[0], await qs[1], "int8 rows");
      const xs = [byCombine, byPass].map(async (s) => (await gpu.readF32(s.xs)).subarray(0, B));
      assert.deepEqual(await xs[0], await xs[1], "row scales");
      for (const s of [byCombine, byPass]) destroyLlmInt8RowsScratch(s);
      for (const b of [q, k, v, m, splits, ...outs]) b.buffer.destroy();
    });
  }
  await t.step("no scan where the combine does not run or a head does not divide a pack block", () => {
    const scratch = createLlmInt8RowsScratch(gpu, "rows", 8, 72);
    const scan = { scratch, threshold: 6 };
    const q = gpu.createTensor("q", "f32", [1, 72]);
    const kv = gpu.createTensor("kv", "f32", [1, 40, 36]);
    const m = gpu.createTensor("m", "i32", [1, 40]);
    const out = gpu.createTensor("out", "f32", [1, 72]);
    const splits = createAttentionDecodeScratch(gpu, "splits", { batch: 1, numHeads: 2, headDim: 36 });
    const shape = { batch: 1, kvLen: 40, numHeads: 2, numKvHeads: 1, headDim: 36, scratch: splits, scan };
    const r = gpu.recorder("test");
    assert.equal(attentionDecode(r, q, kv, kv, m, out, { ...shape, splits: 2 }), null, "Dh/4 = 9");
    const scratch16 = createLlmInt8RowsScratch(gpu, "rows16", 8, 32);
    const scan16 = { scratch: scratch16, threshold: 6 };
    const splits16 = createAttentionDecodeScratch(gpu, "splits16", { batch: 1, numHeads: 2, headDim: 16 });
    const one = { ...shape, headDim: 16, scratch: splits16, scan: scan16, splits: 1 };
    const q16 = gpu.createTensor("q16", "f32", [1, 32]);
    const kv16 = gpu.createTensor("kv16", "f32", [1, 40, 16]);
    const out16 = gpu.createTensor("out16", "f32", [1, 32]);
    assert.equal(attentionDecode(r, q16, kv16, kv16, m, out16, one), null, "one split: no combine");
    r.submit();
    for (const s of [scratch, scratch16]) destroyLlmInt8RowsScratch(s);
    for (const b of [q, kv, m, out, splits, q16, kv16, out16, splits16]) b.buffer.destroy();
  });
});

interface ScanCase {
  B: number;
  kvLen: number;
  H: number;
  Hkv: number;
  Dh: number;
  pad: number[];
  one?: boolean;
}

/**
 * A scan case's random q, caches and masks, its attention output without a scan (`plain`, also in outs[0]),
 * and a threshold that makes ~4 % of that output outliers.
 */
async function scanInputs(gpu: Awaited<ReturnType<typeof testGpu>>, c: ScanCase) {
  const { B, H, Hkv, Dh } = c;
  const K = H * Dh;
  const seed = B * 7 + c.kvLen + Dh;
  const Bc = c.one ? 1 : B; // cache samples
  const S = c.one ? c.kvLen + B - 1 : c.kvLen; // cache positions
  const q = gpu.uploadTensor("q", "f32", [B, K], randomF32(B * K, seed, -1, 1));
  const kvShape = [Bc, S, Hkv * Dh];
  const k = gpu.uploadTensor("k", "f32", kvShape, randomF32(Bc * S * Hkv * Dh, seed + 1, -1, 1));
  const v = gpu.uploadTensor("v", "f32", kvShape, randomF32(Bc * S * Hkv * Dh, seed + 2, -3, 3));
  const valid = Int32Array.from(
    { length: Bc * S },
    (_, i) => (i % S >= c.pad[Math.floor(i / S) % c.pad.length] ? 1 : 0),
  );
  const m = gpu.uploadTensor("m", "i32", [Bc, S], valid);
  const splits = createAttentionDecodeScratch(gpu, "splits", { batch: B, numHeads: H, headDim: Dh });
  const outs = [1, 2].map((i) => gpu.createTensor(`out${i}`, "f32", [B, K]));
  const shape = {
    batch: B,
    kvLen: c.kvLen,
    numHeads: H,
    numKvHeads: Hkv,
    headDim: Dh,
    scratch: splits,
    oneSequence: c.one,
  };
  const r0 = gpu.recorder("test");
  assert.equal(attentionDecode(r0, q, k, v, m, outs[0], shape), null, "no scan asked for");
  r0.submit();
  const plain = await gpu.readF32(outs[0]);
  const mags = Array.from(plain, Math.abs).sort((a, b) => a - b);
  const threshold = mags[Math.floor(mags.length * 0.96)];
  return { q, k, v, m, splits, shape, K, outs, plain, threshold };
}

Deno.test("attentionDecode's combine pass scans each row group of a step apart", async (t) => {
  // A step of 9–24 rows quantizes its 2 or 3 row groups apart (llmInt8RowsGroups): the combine's scan of each
  // group into its part of the joint scratch, then the groups' pack, must give what llmInt8RowsGroups gives
  // over the output, bit for bit (int8 rows, scales, outlier lists, column bits of every group).
  const gpu = await testGpu();
  const cases: (ScanCase & { rows: number[] })[] = [
    { B: 16, kvLen: 517, H: 48, Hkv: 8, Dh: 128, pad: [0, 3, 0, 90], rows: [8, 8] }, // the model's heads
    // Dh 64: 2 heads a pack block.
    { B: 13, kvLen: 300, H: 12, Hkv: 2, Dh: 64, pad: [0, 37, 200, 1, 0], rows: [7, 6] },
    { B: 20, kvLen: 70, H: 4, Hkv: 1, Dh: 16, pad: [0, 9, 0, 3, 0, 69], rows: [8, 8, 4] }, // 8 heads a block
    { B: 17, kvLen: 100, H: 6, Hkv: 3, Dh: 128, pad: [2, 0, 5], rows: [8, 8, 1] },
  ];
  for (const c of cases) {
    await t.step(
      `B=${c.B} as ${c.rows.join(" + ")} kvLen=${c.kvLen} H=${c.H}/${c.Hkv} Dh=${c.Dh}`,
      async () => {
        const { q, k, v, m, splits, shape, K, outs, plain, threshold } = await scanInputs(gpu, c);
        const [byCombine, byPass] = [1, 2].map((i) =>
          createPairedRowsScratch(gpu, `pair${i}`, K, c.rows.length as 2 | 3)
        );
        const rowsScratch = createLlmInt8RowsScratch(gpu, "rows", 8, K);
        const r = gpu.recorder("test");
        const scan = { scratch: rowsScratch, threshold, groups: { rows: c.rows, joint: byCombine } };
        const scanned = attentionDecode(r, q, k, v, m, outs[1], { ...shape, scan });
        assert.ok(scanned && "joint" in scanned, "the combine scanned the groups");
        assert.deepEqual(
          [scanned.rows, scanned.values, scanned.blocks, scanned.perPackBlock],
          [c.rows, outs[1], c.H, llmInt8PackBlockColumns / (c.Dh / 4)],
          "one block a head, 32/D4 heads to a pack block",
        );
        const got = llmInt8PackGroups(r, scanned);
        const want = llmInt8RowsGroups(r, outs[1], c.rows, byPass, { threshold });
        r.submit();
        assertClose(await gpu.readF32(outs[1]), plain, 1e-7, 1e-6);
        const shapeOf = (x: QuantizedRows[]) =>
          x.map((g) => [g.rows, g.K, g.halves, g.values.shape, g.values.byteOffset]);
        assert.deepEqual(shapeOf(got), shapeOf(want), "the same rows, halves and values");
        const lists = await gpu.readU32(byPass.outliers);
        c.rows.forEach((_, g) => {
          const n = lists[g * byPass.outliersGroup];
          assert.ok(n >= 1 && n < K / 2, `group ${g}: ${n} outlier columns of ${K}`);
        });
        // firstDifference: a failing deepEqual of these arrays would build a diff of all of them (and run out
        // of memory).
        const same = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) =>
          assert.equal(firstDifference(a, b), "", what);
        same(await gpu.readU32(byCombine.outliers), lists, "outlier lists");
        const bits = [byCombine, byPass].map(async (s) =>
          (await gpu.readU32(s.groups[0].colbits)).subarray(0, c.rows.length * K / 4)
        );
        same(await bits[0], await bits[1], "column bits");
        const qs = [byCombine, byPass].map(async (s) => new Int8Array(await gpu.readBytes(s.q)));
        same(await qs[0], await qs[1], "int8 rows");
        same(await gpu.readF32(byCombine.xs), await gpu.readF32(byPass.xs), "row scales");
        for (const s of [byCombine, byPass]) destroyPairedRowsScratch(s);
        destroyLlmInt8RowsScratch(rowsScratch);
        for (const b of [q, k, v, m, splits, ...outs]) b.buffer.destroy();
      },
    );
  }
});
