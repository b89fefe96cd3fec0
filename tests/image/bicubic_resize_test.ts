import assert from "node:assert/strict";
import { bicubicResize } from "../../src/image/bicubic_resize.ts";
import { decodeImage } from "../../src/image/decode_image.ts";
import { newRgbImage, type RgbImage } from "../../src/image/rgb_image.ts";
import { manifestImages, patterned, readGolden, sha256Hex } from "./image_test_util.ts";

const LIMIT = { maxPixels: 50_000_000 };

/** The RGB Pillow started from: the image itself for PNG, Pillow's own JPEG decode for JPEG. */
async function pillowSource(
  rec: { file: string; format: string; decoded_rgb_png?: string },
): Promise<RgbImage> {
  return await decodeImage(await readGolden(rec.format === "JPEG" ? rec.decoded_rgb_png! : rec.file), LIMIT);
}

Deno.test("bicubicResize is byte-exact with Pillow BICUBIC on every fixture image", async (t) => {
  const images = await manifestImages();
  for (const [key, rec] of Object.entries(images)) {
    const [w, h] = rec.resized_size;
    await t.step(`${key}: ${rec.orig_size.join("×")} → ${w}×${h}`, async () => {
      const src = await pillowSource(rec);
      assert.equal(await sha256Hex(src.data), rec.decoded_rgb_sha256, "starts from Pillow's decoded RGB");
      const out = bicubicResize(src, w, h);
      assert.deepEqual([out.width, out.height], [w, h]);
      assert.equal(await sha256Hex(out.data), rec.resized_rgb_sha256);
      if (rec.resized_rgb_png) {
        const golden = await decodeImage(await readGolden(rec.resized_rgb_png), LIMIT);
        assert.deepEqual(out.data, golden.data);
      }
    });
  }
});

Deno.test("bicubicResize keeps a constant image constant at any scale", () => {
  // Normalised weights sum to 1 in fixed point up to rounding, so a flat image must stay flat.
  for (const [w, h, ow, oh] of [[7, 5, 448, 448], [700, 3, 13, 9], [1, 1, 448, 896], [33, 17, 33, 40]]) {
    const img = newRgbImage(w, h);
    for (let i = 0; i < img.data.length; i += 3) img.data.set([0, 128, 255], i);
    const out = bicubicResize(img, ow, oh);
    for (let i = 0; i < out.data.length; i += 3) {
      assert.deepEqual(
        [out.data[i], out.data[i + 1], out.data[i + 2]],
        [0, 128, 255],
        `${w}×${h}→${ow}×${oh}`,
      );
    }
  }
});

Deno.test("bicubicResize resamples each column on its own when only the height changes", () => {
  const img = patterned(9, 6, 7);
  const tall = bicubicResize(img, 9, 15);
  for (let x = 0; x < 9; x++) {
    const column = newRgbImage(1, 6);
    for (let y = 0; y < 6; y++) {
      column.data.set(img.data.subarray((y * 9 + x) * 3, (y * 9 + x) * 3 + 3), y * 3);
    }
    const resized = bicubicResize(column, 1, 15);
    for (let y = 0; y < 15; y++) {
      assert.deepEqual(
        Array.from(tall.data.subarray((y * 9 + x) * 3, (y * 9 + x) * 3 + 3)),
        Array.from(resized.data.subarray(y * 3, y * 3 + 3)),
      );
    }
  }
  // Same size: a copy, like Pillow.
  const same = bicubicResize(img, 9, 6);
  assert.deepEqual(same.data, img.data);
  assert.notEqual(same.data, img.data);
});

Deno.test("bicubicResize rejects non-integer or empty target sizes", () => {
  const img = patterned(4, 4, 1);
  assert.throws(() => bicubicResize(img, 0, 4), /Resize target must be positive integers, got 0×4/);
  assert.throws(() => bicubicResize(img, 4, 2.5), /Resize target must be positive integers, got 4×2.5/);
});
