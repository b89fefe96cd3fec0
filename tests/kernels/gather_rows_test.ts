import assert from "node:assert/strict";
import { copyRows, gatherRows, joinRowGroups } from "../../src/ops/gather_rows.ts";
import { gatherRowsRef, joinRowGroupsRef } from "../../src/ref/gather_rows.ts";
import { randomF32, rng } from "../../src/ref/random.ts";
import { assertClose, testGpu } from "./check.ts";
import { tolerance } from "./tolerances.ts";

const exact = tolerance.exact;

Deno.test("copyRows takes a contiguous block of rows", async (t) => {
  const gpu = await testGpu();
  for (const [R, D, first, n] of [[1, 1, 0, 1], [5, 7, 4, 1], [130, 257, 3, 9], [300, 64, 0, 300]]) {
    await t.step(`R=${R} D=${D} rows ${first}+${n}`, async () => {
      const src = randomF32(R * D, R * 3 + D);
      const out = gpu.createTensor("out", "f32", [n, D]);
      const r = gpu.recorder("test");
      copyRows(r, gpu.uploadTensor("src", "f32", [R, D], src), first, out);
      r.submit();
      const rows = Array.from({ length: n }, (_, i) => first + i);
      assertClose(await gpu.readF32(out), gatherRowsRef(src, D, rows), exact.atol, exact.rtol);
    });
  }
});

Deno.test("copyRows rejects rows past the end", async () => {
  const gpu = await testGpu();
  const src = gpu.createTensor("h", "f32", [5, 3]);
  const out = gpu.createTensor("o", "f32", [2, 3]);
  assert.throws(
    () => copyRows(gpu.recorder("t"), src, 4, out),
    /copyRows: rows 4..5 are outside h \[5, 3\] f32/,
  );
});

Deno.test("gatherRows picks rows by index, repeats allowed, NaN for bad indices", async (t) => {
  const gpu = await testGpu();
  for (const [R, D, n] of [[1, 1, 1], [7, 5, 3], [40, 257, 33], [9, 1000, 2]]) {
    await t.step(`R=${R} D=${D} n=${n}`, async () => {
      const src = randomF32(R * D, R + D * 5);
      const r = rng(R * 7 + n);
      const rows = Int32Array.from({ length: n }, () => Math.floor(r() * R));
      const out = gpu.createTensor("out", "f32", [n, D]);
      const rec = gpu.recorder("test");
      gatherRows(
        rec,
        gpu.uploadTensor("src", "f32", [R, D], src),
        gpu.uploadTensor("rows", "i32", [n], rows),
        out,
      );
      rec.submit();
      assertClose(await gpu.readF32(out), gatherRowsRef(src, D, rows), exact.atol, exact.rtol);
    });
  }
  await t.step("out-of-range indices", async () => {
    const src = randomF32(4 * 3, 1);
    const rows = new Int32Array([-1, 2, 4, 2]);
    const out = gpu.createTensor("out", "f32", [4, 3]);
    const rec = gpu.recorder("test");
    gatherRows(
      rec,
      gpu.uploadTensor("src", "f32", [4, 3], src),
      gpu.uploadTensor("rows", "i32", [4], rows),
      out,
    );
    rec.submit();
    const got = await gpu.readF32(out);
    assert.deepEqual([0, 1, 2, 3].map((i) => got.subarray(i * 3, i * 3 + 3).every(Number.isNaN)), [
      true,
      false,
      true,
      false,
    ]);
    const ok = gatherRowsRef(src, 3, [2]);
    assertClose(got.subarray(3, 6), ok, exact.atol, exact.rtol);
    assertClose(got.subarray(9, 12), ok, exact.atol, exact.rtol);
  });
});

Deno.test("joinRowGroups lays groups of rows written at padded offsets end to end", async (t) => {
  const gpu = await testGpu();
  // [G, S, rows a group, n, W]: a short last group, S past a group's rows, one group, one row a group.
  for (
    const [G, S, m, n, W] of [[2, 1000, 8, 12, 97], [3, 77, 3, 9, 25], [1, 70, 5, 3, 13], [4, 11, 1, 4, 9]]
  ) {
    await t.step(`G=${G} S=${S} m=${m} n=${n} W=${W}`, async () => {
      const src = randomF32(G * S, G * 11 + S + W);
      const out = gpu.createTensor("out", "f32", [n, W]);
      const r = gpu.recorder("test");
      joinRowGroups(r, gpu.uploadTensor("src", "f32", [G, S], src), m, out);
      r.submit();
      assertClose(await gpu.readF32(out), joinRowGroupsRef(src, S, m, n, W), exact.atol, exact.rtol);
    });
  }
  await t.step("groups that do not fit", () => {
    const src = gpu.createTensor("g", "f32", [2, 20]);
    assert.throws(
      () => joinRowGroups(gpu.recorder("t"), src, 3, gpu.createTensor("o", "f32", [6, 7])),
      /do not fit/,
    );
    assert.throws(
      () => joinRowGroups(gpu.recorder("t"), src, 4, gpu.createTensor("o", "f32", [9, 5])),
      /do not fit/,
    );
  });
});
