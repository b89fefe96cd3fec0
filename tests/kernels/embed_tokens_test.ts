import assert from "node:assert/strict";
import { embedTokens, packBf16 } from "../../src/ops/embed_tokens.ts";
import { bf16ToF32, embedTokensRef } from "../../src/ref/embed_tokens.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

/** Random bf16 values as raw little-endian bytes (the top halves of random f32s). */
function randomBf16Bytes(n: number, seed: number): Uint8Array {
  const f = randomF32(n, seed, -2, 2);
  const words = new Uint32Array(f.buffer);
  const out = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    out[2 * i] = (words[i] >>> 16) & 0xff;
    out[2 * i + 1] = words[i] >>> 24;
  }
  return out;
}

Deno.test("bf16ToF32 widens exactly and packBf16 pads odd rows to whole words", () => {
  // 1.0 = 0x3f80, -2.5 = 0xc020, 2^-133 (a subnormal) = 0x0001
  const bytes = new Uint8Array([0x80, 0x3f, 0x20, 0xc0, 0x01, 0x00, 0x80, 0x3f]);
  assert.deepEqual([...bf16ToF32(bytes)], [1, -2.5, 2 ** -133, 1]);
  assert.deepEqual([...packBf16(bytes)], [0xc0203f80, 0x3f800001]);
  // two rows of 3 values: each row takes 2 words, the 4th half zero
  const six = new Uint8Array([1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0]);
  assert.deepEqual([...packBf16(six, 3)], [0x00020001, 0x00000003, 0x00050004, 0x00000006]);
  assert.throws(() => packBf16(six, 4), /12 bytes are not whole rows of 4 bf16 values/);
});

Deno.test("embedTokens gathers bf16 rows and scatters image rows", async (t) => {
  const gpu = await testGpu();
  for (
    const [V, D, T, M] of [[1, 1, 1, 0], [37, 7, 5, 3], [50, 64, 130, 0], [41, 33, 130, 40], [9, 2, 300, 256]]
  ) {
    await t.step(`V=${V} D=${D} T=${T} M=${M}`, async () => {
      const seed = V * 101 + D * 7 + T;
      const bytes = randomBf16Bytes(V * D, seed);
      const r = rng(seed + 1);
      const ids = Int32Array.from({ length: T }, () => Math.floor(r() * V));
      // A run of image positions in the middle, filled in order like <IMG_CONTEXT> tokens.
      const imageRow = new Int32Array(T).fill(-1);
      const start = Math.floor(T / 4);
      for (let i = 0; i < Math.min(M, T - start); i++) imageRow[start + i] = i;
      const image = M > 0 ? randomF32(M * D, seed + 2) : null;
      const table = gpu.uploadTensor("table", "bf16x2", [V, D], packBf16(bytes, D));
      const gIds = gpu.uploadTensor("ids", "i32", [T], ids);
      const gRows = gpu.uploadTensor("imageRow", "i32", [T], imageRow);
      const gImage = image ? gpu.uploadTensor("image", "f32", [M, D], image) : null;
      const out = gpu.createTensor("out", "f32", [T, D]);
      const rec = gpu.recorder("test");
      embedTokens(rec, table, gIds, gRows, gImage, out);
      rec.submit();
      const expected = embedTokensRef(bf16ToF32(bytes), D, ids, imageRow, image);
      assertClose(await gpu.readF32(out), expected, tolerance.exact.atol, tolerance.exact.rtol);
    });
  }
});

Deno.test("embedTokens writes NaN rows for out-of-range ids and image rows", async () => {
  const gpu = await testGpu();
  const V = 4, D = 3;
  const bytes = randomBf16Bytes(V * D, 5);
  const ids = new Int32Array([0, -1, 4, 3, 1]);
  const imageRow = new Int32Array([-1, -1, -1, -1, 2]); // image has 2 rows
  const image = randomF32(2 * D, 6);
  const out = gpu.createTensor("out", "f32", [5, D]);
  const rec = gpu.recorder("test");
  embedTokens(
    rec,
    gpu.uploadTensor("table", "bf16x2", [V, D], packBf16(bytes, D)),
    gpu.uploadTensor("ids", "i32", [5], ids),
    gpu.uploadTensor("imageRow", "i32", [5], imageRow),
    gpu.uploadTensor("image", "f32", [2, D], image),
    out,
  );
  rec.submit();
  const got = await gpu.readF32(out);
  const nanRows = [0, 1, 2, 3, 4].filter((t) => got.subarray(t * D, t * D + D).every(Number.isNaN));
  assert.deepEqual(nanRows, [1, 2, 4]);
  const expected = embedTokensRef(bf16ToF32(bytes), D, ids, imageRow, image);
  for (const t of [0, 3]) {
    assertClose(
      got.subarray(t * D, t * D + D),
      expected.subarray(t * D, t * D + D),
      tolerance.exact.atol,
      tolerance.exact.rtol,
    );
  }
});
