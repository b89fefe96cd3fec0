import assert from "node:assert/strict";
import { resizedTiles, resizeRows, TileResize, uploadRgbImage } from "../../src/ops/resize_bicubic.ts";
import { bicubicResize } from "../../src/image/bicubic_resize.ts";
import { normalizationTable } from "../../src/image/pixel_values.ts";
import type { RgbImage } from "../../src/image/rgb_image.ts";
import { rng } from "../../src/ref/random.ts";
import { firstDifference, testGpu } from "./check.ts";

function randomImage(width: number, height: number, seed: number): RgbImage {
  const r = rng(seed);
  return {
    width,
    height,
    data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(r() * 256)),
  };
}

/** bicubicResize, then the resized image's S² tiles row-major as normalised planes, tile i at `base` + i of `tiles` (if inside). */
function expectedTiles(img: RgbImage, outW: number, outH: number, S: number, tiles: number, base: number) {
  const resized = bicubicResize(img, outW, outH);
  const lut = normalizationTable();
  const out = new Float32Array(tiles * 3 * S * S).fill(-7); // tiles outside the range keep this
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const tile = base + Math.floor(y / S) * (outW / S) + Math.floor(x / S);
      if (tile < 0 || tile >= tiles) continue;
      for (let c = 0; c < 3; c++) {
        out[((tile * 3 + c) * S + (y % S)) * S + (x % S)] =
          lut[c * 256 + resized.data[(y * outW + x) * 3 + c]];
      }
    }
  }
  return out;
}

Deno.test("resizeRows + resizedTiles give Pillow's bicubic resize as normalised tiles, bit for bit", async (t) => {
  const gpu = await testGpu();
  const lut = gpu.uploadTensor("lut", "f32", [768], normalizationTable());
  // [source w, h, grid cols, rows, S, tiles in out, first tile]
  const cases: [number, number, number, number, number, number, number][] = [
    [37, 23, 3, 2, 7, 6, 0], // downscale both axes
    [9, 5, 4, 3, 7, 13, 1], // upscale both, written after a tile
    [50, 51, 1, 1, 7, 8, 7], // a thumbnail into the last tile
    [21, 13, 3, 2, 7, 6, 0], // the width keeps its size: identity taps
    [1, 1, 2, 1, 5, 2, 0], // one pixel
    [301, 97, 3, 1, 11, 4, 0], // several times smaller, odd row bytes
    [40, 30, 4, 3, 5, 5, -4], // tiles 4…8 of the image: a later group of a vision pass
    [40, 30, 4, 3, 5, 3, 1], // tiles 0…1 of the image: the first group, whose rest goes to the next one
  ];
  for (const [w, h, cols, rows, S, tiles, base] of cases) {
    await t.step(`${w}×${h} → ${cols}×${rows} tiles of ${S}² at tile ${base} of ${tiles}`, async () => {
      const img = randomImage(w, h, w * 31 + h);
      const gimg = uploadRgbImage(gpu, "img", img);
      const plan = new TileResize(gpu, w, h, cols * S, rows * S);
      const out = gpu.uploadTensor(
        "out",
        "f32",
        [tiles, 3, S, S],
        new Float32Array(tiles * 3 * S * S).fill(-7),
      );
      const r = gpu.recorder("test");
      resizeRows(r, gimg, plan);
      resizedTiles(r, plan, lut, out, base);
      r.submit();
      const got = await gpu.readF32(out);
      assert.equal(firstDifference(got, expectedTiles(img, cols * S, rows * S, S, tiles, base)), "");
      plan.destroy();
      out.buffer.destroy();
      gimg.bytes.buffer.destroy();
    });
  }
});

Deno.test("resizeRows and resizedTiles reject a plan of another size or tiles that are not whole", async () => {
  const gpu = await testGpu();
  const lut = gpu.createTensor("lut", "f32", [768]);
  const img = uploadRgbImage(gpu, "img", randomImage(10, 10, 1));
  const out = gpu.createTensor("out", "f32", [2, 3, 5, 5]);
  assert.throws(
    () => resizedTiles(gpu.recorder("t"), new TileResize(gpu, 10, 10, 12, 5), lut, out, 0),
    /resizedTiles: 12×5 is not whole tiles of 5²/,
  );
  assert.throws(
    () => resizeRows(gpu.recorder("t"), img, new TileResize(gpu, 9, 10, 10, 5)),
    /a plan for 9×10 given a 10×10 image/,
  );
});
