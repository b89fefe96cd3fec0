import assert from "node:assert/strict";
import { bicubicResize } from "../../src/image/bicubic_resize.ts";
import { cpythonSetOrder, tupleHash } from "../../src/image/cpython_set_order.ts";
import { dynamicPreprocess, findClosestAspectRatio, targetRatios } from "../../src/image/dynamic_tiling.ts";
import { cropRgbImage, newRgbImage, type RgbImage } from "../../src/image/rgb_image.ts";
import { manifestImages } from "./image_test_util.ts";

interface CpythonGolden {
  python: string;
  cases: { min_num: number; max_num: number; target_ratios: [number, number][] }[];
}

Deno.test("tupleHash equals CPython's hash() of small int pairs", () => {
  // Values printed by CPython 3.11 `hash((a, b))`, as unsigned 64-bit.
  const signed: [number, number, bigint][] = [
    [1, 1, 8389048192121911274n],
    [0, 0, -8458139203682520985n],
    [3, 2, 3863035679738500442n],
  ];
  for (const [a, b, h] of signed) {
    assert.equal(tupleHash([a, b]), BigInt.asUintN(64, h), `hash((${a}, ${b}))`);
  }
});

Deno.test("cpythonSetOrder ignores duplicates and iterates in table order", () => {
  const order = cpythonSetOrder([[1, 1], [1, 2], [1, 1], [2, 1]]);
  assert.equal(order.length, 3);
  assert.deepEqual([...order].sort(), [[1, 1], [1, 2], [2, 1]]);
});

Deno.test("targetRatios reproduces the reference candidate order of every fixture image", async () => {
  for (const [key, rec] of Object.entries(await manifestImages())) {
    assert.deepEqual(targetRatios(rec.min_num, rec.max_num), rec.target_ratios, key);
  }
});

Deno.test("targetRatios reproduces CPython's set order for max_num 1..40 and several min_num", async (t) => {
  const golden: CpythonGolden = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/cpython_target_ratios.json", import.meta.url)),
  );
  assert.equal(golden.cases.length, 44);
  for (const c of golden.cases) {
    await t.step(`min ${c.min_num}, max ${c.max_num} (CPython ${golden.python})`, () => {
      assert.deepEqual(targetRatios(c.min_num, c.max_num), c.target_ratios);
    });
  }
});

Deno.test("findClosestAspectRatio follows the reference tie rule", async (t) => {
  const ratios = targetRatios(1, 6);
  const cases: [number, number, [number, number], string][] = [
    [700, 700, [2, 2], "square ties (1,1) and (2,2): area 490000 > 0.5·448²·4, so the larger grid wins"],
    [300, 280, [1, 1], "closest ratio is 1:1 outright"],
    [1000, 400, [3, 1], "2.5 is equidistant from 2 and 3; area 400000 > 0.5·448²·3 picks (3,1)"],
    [500, 200, [2, 1], "2.5 again, but area 100000 is too small to move past (2,1)"],
    [64, 48, [3, 2], "4:3 is closest to 3:2 (tiny images are still up-scaled)"],
  ];
  for (const [w, h, expected, why] of cases) {
    await t.step(`${w}×${h} → (${expected.join(",")}): ${why}`, () => {
      assert.deepEqual(findClosestAspectRatio(w / h, ratios, w, h, 448), expected);
    });
  }
});

function patterned(width: number, height: number): RgbImage {
  const img = newRgbImage(width, height);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 31 + (i >> 7)) & 0xff;
  return img;
}

Deno.test("dynamicPreprocess cuts the resized image row-major and appends the thumbnail last", () => {
  const img = patterned(64, 48);
  const { grid, tiles } = dynamicPreprocess(img, {
    minNum: 1,
    maxNum: 6,
    imageSize: 448,
    useThumbnail: true,
  });
  assert.deepEqual(grid, [3, 2]);
  assert.equal(tiles.length, 7, "3×2 tiles + thumbnail");
  const resized = bicubicResize(img, 3 * 448, 2 * 448);
  for (let i = 0; i < 6; i++) {
    const left = (i % 3) * 448, top = Math.floor(i / 3) * 448;
    assert.deepEqual(
      tiles[i].data,
      cropRgbImage(resized, left, top, left + 448, top + 448).data,
      `tile ${i}`,
    );
  }
  assert.deepEqual(tiles[6].data, bicubicResize(img, 448, 448).data, "thumbnail = whole image at 448²");
});

Deno.test("dynamicPreprocess adds no thumbnail to a single tile or when disabled", () => {
  const square = dynamicPreprocess(patterned(300, 280), {
    minNum: 1,
    maxNum: 6,
    imageSize: 448,
    useThumbnail: true,
  });
  assert.deepEqual(square.grid, [1, 1]);
  assert.equal(square.tiles.length, 1);
  const wide = dynamicPreprocess(patterned(100, 40), {
    minNum: 1,
    maxNum: 6,
    imageSize: 448,
    useThumbnail: false,
  });
  assert.deepEqual(wide.grid, [2, 1]);
  assert.equal(wide.tiles.length, 2);
});

Deno.test("dynamicPreprocess gives the fixture images their reference grids and tile counts", async () => {
  for (const [key, rec] of Object.entries(await manifestImages())) {
    const [w, h] = rec.orig_size;
    const { grid, tiles } = dynamicPreprocess(newRgbImage(w, h), {
      minNum: rec.min_num,
      maxNum: rec.max_num,
      imageSize: 448,
      useThumbnail: rec.use_thumbnail,
    });
    assert.deepEqual(grid, rec.grid, key);
    assert.equal(tiles.length, rec.num_tiles, key);
    for (const tile of tiles) assert.deepEqual([tile.width, tile.height], [448, 448]);
  }
});
