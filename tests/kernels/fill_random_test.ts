import assert from "node:assert/strict";
import { fillRandom } from "../../src/ops/fill_random.ts";
import { bf16Bits, fillRandomRef, fillRandomWord } from "../../src/ref/fill_random.ts";
import type { DType } from "../../src/gpu/tensor.ts";
import { testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

type FillDtype = "i8x4" | "f32" | "bf16x2" | "i32";

async function gpuFill(dtype: FillDtype, shape: number[], opts: { seed: number; lo?: number; hi?: number }) {
  const gpu = await testGpu();
  const t = gpu.createTensor(`fill.${dtype}`, dtype as DType, shape);
  const r = gpu.recorder("test");
  fillRandom(r, t, opts);
  r.submit();
  const words = await gpu.readU32(t);
  t.buffer.destroy();
  return words;
}

const f32Of = (w: number) => new Float32Array(new Uint32Array([w]).buffer)[0];
const bf16Of = (h: number) => f32Of(h << 16);

Deno.test("fillRandom int8 and int32 words equal the CPU reference exactly", async (t) => {
  const cases: [FillDtype, number[], { seed: number; lo?: number; hi?: number }][] = [
    ["i8x4", [1, 4], { seed: 1 }],
    ["i8x4", [3, 7], { seed: 2 }], // odd row: the last word of each row keeps 1 zero byte
    ["i8x4", [17, 257], { seed: 3 }],
    ["i8x4", [5, 3200], { seed: 4 }],
    ["i32", [1], { seed: 5, lo: 0, hi: 92553 }],
    ["i32", [301], { seed: 6, lo: -5, hi: 6 }],
    ["i32", [2, 1000], { seed: 7, lo: -(2 ** 31), hi: 2 ** 32 - 2 ** 31 }],
  ];
  for (const [dtype, shape, opts] of cases) {
    await t.step(`${dtype} [${shape}] seed ${opts.seed}`, async () => {
      const got = await gpuFill(dtype, shape, opts);
      const want = fillRandomRef(dtype, shape.length > 1 ? shape[0] : 1, shape[shape.length - 1], opts);
      assert.deepEqual(Array.from(got), Array.from(want));
    });
  }
});

Deno.test("fillRandom f32 and bf16 values match the CPU reference within f32 rounding", async (t) => {
  // The GPU may fuse lo + (hi − lo)·u into one FMA, so f32 may differ by an ulp and a bf16 rounding may
  // then land one bf16 ulp away.
  const tol = tolerance.elementwise;
  for (
    const [dtype, shape, lo, hi] of [
      ["f32", [1, 1], -1, 1],
      ["f32", [33, 65], 0.5, 1.5],
      ["bf16x2", [1, 3], -1, 1],
      ["bf16x2", [19, 255], -0.02, 0.02],
    ] as [FillDtype, number[], number, number][]
  ) {
    await t.step(`${dtype} [${shape}] in [${lo}, ${hi})`, async () => {
      const opts = { seed: shape[0] * 7 + shape[1], lo, hi };
      const got = await gpuFill(dtype, shape, opts);
      const want = fillRandomRef(dtype, shape[0], shape[1], opts);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) {
        if (dtype === "f32") {
          const a = f32Of(got[i]), b = f32Of(want[i]);
          assert.ok(Math.abs(a - b) <= tol.atol + tol.rtol * Math.abs(b), `word ${i}: ${a} vs ${b}`);
          assert.ok(a >= lo && a <= hi, `word ${i}: ${a} outside [${lo}, ${hi}]`);
        } else {
          for (const shift of [0, 16]) {
            const a = bf16Of((got[i] >>> shift) & 0xffff), b = bf16Of((want[i] >>> shift) & 0xffff);
            assert.ok(Math.abs(a - b) <= Math.abs(b) * 2 ** -7, `word ${i} half ${shift}: ${a} vs ${b}`);
          }
        }
      }
      if (dtype === "bf16x2" && shape[1] % 2 === 1) {
        for (let row = 0; row < shape[0]; row++) {
          const last = got[(row + 1) * Math.ceil(shape[1] / 2) - 1];
          assert.equal(last >>> 16, 0, `row ${row}: the padding half of its last word is not zero`);
        }
      }
    });
  }
});

Deno.test("fillRandom int8 bytes cover −127..127 evenly (0 twice) and never −128", async () => {
  const words = await gpuFill("i8x4", [64, 4096], { seed: 42 });
  const bytes = new Int8Array(words.buffer);
  const counts = new Map<number, number>();
  let sum = 0;
  for (const b of bytes) {
    counts.set(b, (counts.get(b) ?? 0) + 1);
    sum += b;
  }
  assert.ok(!counts.has(-128), "−128 appeared");
  assert.equal(counts.size, 255);
  const expected = bytes.length / 256;
  for (const [v, c] of counts) {
    const want = v === 0 ? 2 * expected : expected; // −128 folds onto 0
    assert.ok(Math.abs(c - want) < 0.1 * want, `value ${v}: ${c} times, expected about ${want}`);
  }
  assert.ok(Math.abs(sum / bytes.length) < 0.5, `mean ${sum / bytes.length}`);
});

Deno.test("fillRandom depends only on the seed and word index, across a folded 2-D grid", async () => {
  // 2²⁴ + 5 words need more than 65535 workgroups of 256, so the grid folds into a second dimension.
  const n = 2 ** 24 + 5;
  const a = await gpuFill("i32", [n], { seed: 9, lo: 0, hi: 1000 });
  for (const w of [0, 1, 255, 256, 65535 * 256 - 1, 65535 * 256, 65535 * 256 + 1, n - 1]) {
    assert.equal(a[w], fillRandomWord("i32", w, n, { seed: 9, lo: 0, hi: 1000 }), `word ${w}`);
  }
  const b = await gpuFill("i32", [1000], { seed: 10, lo: 0, hi: 1000 });
  let same = 0;
  for (let i = 0; i < 1000; i++) if (a[i] === b[i]) same++;
  assert.ok(same < 20, `seeds 9 and 10 agree on ${same} of 1000 words`);
});

Deno.test("bf16Bits rounds to nearest even", () => {
  assert.equal(bf16Bits(1), 0x3f80);
  assert.equal(bf16Bits(f32Of(0x3f808000)), 0x3f80); // tie, even stays
  assert.equal(bf16Bits(f32Of(0x3f818000)), 0x3f82); // tie, odd rounds up
  assert.equal(bf16Bits(f32Of(0x3f808001)), 0x3f81);
});

Deno.test("fillRandom rejects dtypes and ranges it cannot fill", async () => {
  const gpu = await testGpu();
  const u = gpu.createTensor("u", "u32", [4]);
  assert.throws(() => fillRandom(gpu.recorder("t"), u, { seed: 1 }), /has no random fill/);
  const f = gpu.createTensor("f", "f32", [4]);
  assert.throws(() => fillRandom(gpu.recorder("t"), f, { seed: 1, lo: 1, hi: 1 }), /empty range/);
  const i = gpu.createTensor("i", "i32", [4]);
  assert.throws(() => fillRandom(gpu.recorder("t"), i, { seed: 1, lo: 0, hi: 0.5 }), /must be integers/);
});
