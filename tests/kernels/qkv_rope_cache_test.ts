import assert from "node:assert/strict";
import { qkvRopeCache } from "../../src/ops/qkv_rope_cache.ts";
import { splitLmQkv } from "../../src/ops/split_lm_qkv.ts";
import { rope, ropeTables } from "../../src/ops/rope.ts";
import { kvWrite } from "../../src/ops/kv_write.ts";
import { splitLmQkvRef } from "../../src/ref/split_lm_qkv.ts";
import { ropeRef } from "../../src/ref/rope.ts";
import { kvWriteRef } from "../../src/ref/kv_write.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { packBf16, unpackBf16 } from "../../src/ref/kv_bf16.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

const P = 4096;

// [B, T, S, startPos, H, Hkv, Dh]: decode with the real head layout, batched prefill, decode into the last
// slot, MHA with an odd half width, chunked prefill of a batch.
const cases = [
  [1, 1, 40, 17, 48, 8, 128],
  [2, 5, 9, 3, 4, 2, 16],
  [3, 1, 8, 7, 6, 1, 64],
  [2, 7, 20, 0, 3, 3, 6],
  [2, 33, 70, 30, 12, 2, 128],
] as const;

Deno.test("qkvRopeCache equals split + rope(q) + rope(k) + kvWrite(k) + kvWrite(v), on the CPU and the GPU", async (t) => {
  const gpu = await testGpu();
  for (const [B, T, S, startPos, H, Hkv, Dh] of cases) {
    await t.step(`B=${B} T=${T} S=${S} startPos=${startPos} H=${H}/${Hkv} Dh=${Dh}`, async () => {
      const rows = B * T, G = H / Hkv, W = Hkv * Dh;
      const seed = B * 5 + T * 7 + S + H * 11 + Dh;
      const qkv = randomF32(rows * Hkv * (G + 2) * Dh, seed, -2, 2);
      // Positions are scattered over the table (late ones included), not just startPos + t.
      const draw = rng(seed + 1);
      const positions = Int32Array.from({ length: rows }, (_, i) => i === 0 ? P - 1 : Math.floor(draw() * P));
      const kBefore = randomF32(B * S * W, seed + 2), vBefore = randomF32(B * S * W, seed + 3);
      const tables = ropeTables(1e6, Dh, P);

      // CPU: the composition of the existing references.
      const split = splitLmQkvRef(qkv, rows, H, Hkv, Dh);
      const wantQ = ropeRef(split.q, positions, tables.cos, tables.sin, H, Dh);
      const kRot = ropeRef(split.k, positions, tables.cos, tables.sin, Hkv, Dh);
      const wantK = kvWriteRef(kRot, kBefore, B, T, S, W, startPos);
      const wantV = kvWriteRef(split.v, vBefore, B, T, S, W, startPos);

      const up = (label: string, dtype: "f32" | "i32", shape: number[], data: Float32Array | Int32Array) =>
        gpu.uploadTensor(label, dtype, shape, data);
      const gqkv = up("qkv", "f32", [rows, Hkv * (G + 2) * Dh], qkv);
      const gpos = up("positions", "i32", [rows], positions);
      const gcos = up("cos", "f32", [P, Dh / 2], tables.cos);
      const gsin = up("sin", "f32", [P, Dh / 2], tables.sin);
      const heads = { numHeads: H, numKvHeads: Hkv, headDim: Dh };

      // GPU, fused.
      const q = up("q", "f32", [rows, H * Dh], randomF32(rows * H * Dh, seed + 4));
      const kCache = up("k_cache", "f32", [B, S, W], kBefore);
      const vCache = up("v_cache", "f32", [B, S, W], vBefore);
      const r = gpu.recorder("fused");
      qkvRopeCache(r, gqkv, gpos, gcos, gsin, q, kCache, vCache, { batch: B, tokens: T, startPos, ...heads });
      assert.equal(r.size, 1, "one dispatch");
      r.submit();
      const got = { q: await gpu.readF32(q), k: await gpu.readF32(kCache), v: await gpu.readF32(vCache) };

      // GPU, the five kernels it replaces.
      const q5 = gpu.createTensor("q5", "f32", [rows, H * Dh]);
      const k5 = gpu.createTensor("k5", "f32", [rows, W]);
      const v5 = gpu.createTensor("v5", "f32", [rows, W]);
      const kCache5 = up("k_cache5", "f32", [B, S, W], kBefore);
      const vCache5 = up("v_cache5", "f32", [B, S, W], vBefore);
      const r5 = gpu.recorder("five");
      splitLmQkv(r5, gqkv, q5, k5, v5, heads);
      rope(r5, q5, gpos, gcos, gsin, { numHeads: H, headDim: Dh });
      rope(r5, k5, gpos, gcos, gsin, { numHeads: Hkv, headDim: Dh });
      kvWrite(r5, k5, kCache5, { batch: B, tokens: T, startPos });
      kvWrite(r5, v5, vCache5, { batch: B, tokens: T, startPos });
      r5.submit();

      // Bit-identical to the kernels it replaces (same f32 operations on the same device) …
      assert.deepEqual(got.q, await gpu.readF32(q5), "q as rope(split)");
      assert.deepEqual(got.k, await gpu.readF32(kCache5), "k cache as kvWrite(rope(split))");
      assert.deepEqual(got.v, await gpu.readF32(vCache5), "v cache as kvWrite(split)");
      // … and to the CPU references: the values and untouched rows exactly, the rotations within rope's
      // tolerance (the CPU rounds x1·c − x2·s once, the GPU after each product unless it fuses them).
      assert.deepEqual(got.v, wantV);
      const tol = tolerance.elementwise;
      assertClose(got.q, wantQ, tol.atol, tol.rtol);
      assertClose(got.k, wantK, tol.atol, tol.rtol);
    });
  }
});

Deno.test("qkvRopeCache into a bf16 cache stores the f32 kernel's keys and values rounded to nearest even", async (t) => {
  const gpu = await testGpu();
  for (const [B, T, S, startPos, H, Hkv, Dh] of cases.filter((c) => c[6] % 4 === 0)) {
    await t.step(`B=${B} T=${T} S=${S} startPos=${startPos} H=${H}/${Hkv} Dh=${Dh}`, async () => {
      const rows = B * T, G = H / Hkv, W = Hkv * Dh;
      const seed = 3 * B + 5 * T + 7 * S + H + Dh + 99;
      const qkv = randomF32(rows * Hkv * (G + 2) * Dh, seed, -3, 3);
      const draw = rng(seed + 1);
      const positions = Int32Array.from({ length: rows }, () => Math.floor(draw() * P));
      // The cache before: random bf16 words; the f32 run starts from the same values, widened.
      const kWords = packBf16(randomF32(B * S * W, seed + 2)),
        vWords = packBf16(randomF32(B * S * W, seed + 3));
      const tables = ropeTables(1e6, Dh, P);
      const gqkv = gpu.uploadTensor("qkv", "f32", [rows, Hkv * (G + 2) * Dh], qkv);
      const gpos = gpu.uploadTensor("positions", "i32", [rows], positions);
      const gcos = gpu.uploadTensor("cos", "f32", [P, Dh / 2], tables.cos);
      const gsin = gpu.uploadTensor("sin", "f32", [P, Dh / 2], tables.sin);
      const shape = { batch: B, tokens: T, startPos, numHeads: H, numKvHeads: Hkv, headDim: Dh };
      const run = async (bf16: boolean) => {
        const q = gpu.createTensor("q", "f32", [rows, H * Dh]);
        const [k, v] = [kWords, vWords].map((w, i) =>
          bf16
            ? gpu.uploadTensor(`cache${i}`, "bf16x2", [B, S, W], w)
            : gpu.uploadTensor(`cache${i}`, "f32", [B, S, W], unpackBf16(w))
        );
        const r = gpu.recorder(bf16 ? "bf16" : "f32");
        qkvRopeCache(r, gqkv, gpos, gcos, gsin, q, k, v, shape);
        r.submit();
        const read = (x: typeof k) => bf16 ? gpu.readU32(x) : gpu.readF32(x).then(packBf16);
        return { q: await gpu.readF32(q), k: await read(k), v: await read(v) };
      };
      const want = await run(false), got = await run(true);
      assert.deepEqual(got.q, want.q, "queries as with an f32 cache");
      // Words: the f32 kernel's values rounded (RNE), every untouched position as it was.
      assert.deepEqual(got.k, want.k, "k cache words");
      assert.deepEqual(got.v, want.v, "v cache words");
    });
  }
});

Deno.test("qkvRopeCache refuses positions past the cache capacity and heads that do not group", async () => {
  const gpu = await testGpu();
  const qkv = gpu.createTensor("qkv", "f32", [2, 16]);
  const pos = gpu.createTensor("pos", "i32", [2]);
  const table = gpu.createTensor("table", "f32", [8, 2]);
  const q = gpu.createTensor("q", "f32", [2, 8]);
  const cache = gpu.createTensor("cache", "f32", [1, 5, 4]);
  const shape = { batch: 1, tokens: 2, startPos: 4, numHeads: 2, numKvHeads: 1, headDim: 4 };
  assert.throws(
    () => qkvRopeCache(gpu.recorder("t"), qkv, pos, table, table, q, cache, cache, shape),
    /positions 4…5 do not fit a cache of 5 positions/,
  );
  assert.throws(
    () =>
      qkvRopeCache(gpu.recorder("t"), qkv, pos, table, table, q, cache, cache, { ...shape, numKvHeads: 3 }),
    /2 query heads do not split into 3 kv groups/,
  );
  // A bf16 word holds the elements of pairs i and i + 1 of a head: Dh/2 must be even.
  const t6 = (label: string, shape: number[]) => gpu.createTensor(label, "f32", shape);
  const bf16 = gpu.createTensor("cache16", "bf16x2", [1, 6, 6]);
  const [qkv6, table6, q6] = [t6("qkv6", [2, 24]), t6("table6", [8, 3]), t6("q6", [2, 12])];
  assert.throws(
    () =>
      qkvRopeCache(gpu.recorder("t"), qkv6, pos, table6, table6, q6, bf16, bf16, { ...shape, headDim: 6 }),
    /head dim 6 must be a multiple of 4 for a bf16 cache/,
  );
});
