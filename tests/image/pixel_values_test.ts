import assert from "node:assert/strict";
import { InputError } from "../../src/errors.ts";
import { normalizeTiles, planImageTiles, preprocessImage } from "../../src/image/pixel_values.ts";
import { newRgbImage } from "../../src/image/rgb_image.ts";
import { type ManifestImage, manifestImages, readGolden, sha256Hex } from "./image_test_util.ts";

const MAX_PIXELS = 50_000_000;
const PATCH = 14;

async function run(rec: ManifestImage, file = rec.file) {
  return await preprocessImage(await readGolden(file), {
    maxNum: rec.max_num,
    minNum: rec.min_num,
    useThumbnail: rec.use_thumbnail,
    maxPixels: MAX_PIXELS,
  });
}

/** The bytes Pillow decoded: the file itself for PNG, the PIL-decoded *.decoded.png for JPEG. */
function pillowFile(rec: ManifestImage): string {
  return rec.format === "JPEG" ? rec.decoded_rgb_png! : rec.file;
}

Deno.test("preprocessImage matches the reference pixel_values of every fixture image", async (t) => {
  for (const [key, rec] of Object.entries(await manifestImages())) {
    await t.step(`${key} (${rec.format}): grid ${rec.grid.join("×")}, ${rec.num_tiles} tiles`, async () => {
      const out = await run(rec);
      assert.deepEqual(out.grid, rec.grid);
      assert.equal(out.tiles, rec.num_tiles);
      assert.equal(out.pixelValues.length, rec.pixel_values_shape.reduce((a, b) => a * b, 1));
      if (rec.format === "PNG") {
        assert.equal(await sha256Hex(out.pixelValues), rec.pixel_values_f32_sha256, "full f32 pixel_values");
      }
    });
  }
});

Deno.test("preprocessImage is exact on JPEG fixtures once decoding matches Pillow, and close from the JPEG", async () => {
  for (const [key, rec] of Object.entries(await manifestImages())) {
    if (rec.format !== "JPEG") continue;
    // From Pillow's decoded RGB (lossless PNG) every later stage must be bit-exact.
    const fromPil = await run(rec, rec.decoded_rgb_png!);
    assert.equal(await sha256Hex(fromPil.pixelValues), rec.pixel_values_f32_sha256, key);
    // From the JPEG itself the only difference is the decoder (≤ 3 LSB, see decode_image_test.ts).
    const fromJpeg = await run(rec);
    let maxLsb = 0;
    for (let i = 0; i < fromPil.pixelValues.length; i++) {
      const c = Math.floor(i / (448 * 448)) % 3;
      // Back to 8-bit units: Δ·std·255.
      const lsb = Math.abs(fromJpeg.pixelValues[i] - fromPil.pixelValues[i]) * [0.229, 0.224, 0.225][c] * 255;
      if (lsb > maxLsb) maxLsb = lsb;
    }
    console.log(`    ${key}: pixel_values from the JPEG differ by at most ${maxLsb.toFixed(3)} LSB`);
    // A 3 LSB input difference can grow through the bicubic overshoot (Σ|w| ≈ 1.07 per axis) to ~3.4.
    assert.ok(maxLsb <= 3.5, `${maxLsb} LSB`);
  }
});

Deno.test("preprocessImage reproduces the sampled patches of every fixture image exactly", async (t) => {
  for (const [key, rec] of Object.entries(await manifestImages())) {
    await t.step(key, async () => {
      const { pixelValues } = await run(rec, pillowFile(rec));
      const golden = new Float32Array((await readGolden(rec.sampled_patches.file)).slice().buffer);
      const positions = rec.sampled_patches.patch_grid_positions_row_col;
      // golden: [tiles, positions, 3, 14, 14] f32
      assert.deepEqual(rec.sampled_patches.shape, [rec.num_tiles, positions.length, 3, PATCH, PATCH]);
      let g = 0;
      for (let tile = 0; tile < rec.num_tiles; tile++) {
        for (const [row, col] of positions) {
          for (let c = 0; c < 3; c++) {
            for (let y = 0; y < PATCH; y++) {
              for (let x = 0; x < PATCH; x++, g++) {
                const at = ((tile * 3 + c) * 448 + row * PATCH + y) * 448 + col * PATCH + x;
                if (pixelValues[at] !== golden[g]) {
                  assert.fail(
                    `tile ${tile} patch (${row},${col}) c${c} y${y} x${x}: ${pixelValues[at]} ≠ ${golden[g]}`,
                  );
                }
              }
            }
          }
        }
      }
      assert.equal(g, golden.length);
    });
  }
});

Deno.test("preprocessImage matches the f16 golden of img1 after rounding to f16", async () => {
  const rec = (await manifestImages()).img1;
  const { pixelValues } = await run(rec);
  const golden = new Float16Array((await readGolden(rec.pixel_values_f16!.file)).slice().buffer);
  assert.equal(golden.length, pixelValues.length);
  const ours = Float16Array.from(pixelValues); // round-to-nearest-even, like torch's .half()
  let mismatches = 0;
  for (let i = 0; i < golden.length; i++) if (!Object.is(ours[i], golden[i])) mismatches++;
  assert.equal(mismatches, 0);
});

Deno.test("preprocessImage matches the per-tile channel mean and std of every fixture image", async () => {
  for (const [key, rec] of Object.entries(await manifestImages())) {
    const { pixelValues, tiles } = await run(rec, pillowFile(rec));
    const plane = 448 * 448;
    for (let t = 0; t < tiles; t++) {
      for (let c = 0; c < 3; c++) {
        const values = pixelValues.subarray((t * 3 + c) * plane, (t * 3 + c + 1) * plane);
        let sum = 0;
        for (const v of values) sum += v;
        const mean = sum / plane;
        let sq = 0;
        for (const v of values) sq += (v - mean) ** 2;
        const std = Math.sqrt(sq / (plane - 1)); // unbiased std (ddof 1, torch.std default), as recorded
        assert.ok(Math.abs(mean - rec.tile_channel_mean[t][c]) < 1e-9, `${key} tile ${t} c${c} mean`);
        assert.ok(Math.abs(std - rec.tile_channel_std[t][c]) < 1e-9, `${key} tile ${t} c${c} std`);
      }
    }
  }
});

Deno.test("normalizeTiles computes (u8/255 − mean)/std in float32 like torchvision", () => {
  const tile = newRgbImage(1, 1);
  tile.data.set([0, 128, 255]);
  const out = normalizeTiles([tile]);
  const f = Math.fround;
  const expected = [[0, 0.485, 0.229], [128, 0.456, 0.224], [255, 0.406, 0.225]].map(([v, m, s]) =>
    f(f(f(v / 255) - f(m)) / f(s))
  );
  assert.deepEqual(Array.from(out), expected);
  assert.throws(() => normalizeTiles([tile, newRgbImage(2, 2)]), /Tile 1 is 2×2; expected 1×1/);
});

Deno.test("preprocessImage validates its options and passes decoder errors through", async (t) => {
  const png = await readGolden("images/square_rgba.png");
  const cases: [string, Parameters<typeof preprocessImage>[1], string, RegExp][] = [
    [
      "max_num 0",
      { maxNum: 0, maxPixels: MAX_PIXELS },
      "max_num",
      /^max_num must be an integer from 1 to 40, got 0$/,
    ],
    [
      "max_num 41",
      { maxNum: 41, maxPixels: MAX_PIXELS },
      "max_num",
      /^max_num must be an integer from 1 to 40, got 41$/,
    ],
    ["max_num 2.5", { maxNum: 2.5, maxPixels: MAX_PIXELS }, "max_num", /got 2\.5$/],
    [
      "min_num above max_num",
      { maxNum: 4, minNum: 5, maxPixels: MAX_PIXELS },
      "min_num",
      /^min_num must be an integer from 1 to max_num \(4\), got 5$/,
    ],
  ];
  for (const [name, options, param, pattern] of cases) {
    await t.step(name, async () => {
      const err = await preprocessImage(png, options).then(() => null, (e) => e);
      assert.ok(err instanceof InputError);
      assert.equal(err.status, 400);
      assert.equal(err.param, param);
      assert.match(err.message, pattern);
    });
  }
  await t.step("too many pixels is a 413 from the header", async () => {
    const err = await preprocessImage(png, { maxNum: 6, maxPixels: 1000 }).then(() => null, (e) => e);
    assert.ok(err instanceof InputError);
    assert.equal(err.status, 413);
    assert.match(err.message, /^Image is 300×280 pixels; the limit is 1000 pixels$/);
  });
});

Deno.test("preprocessImage honours min_num and max_num when choosing the grid", async () => {
  const png = await readGolden("images/square_big.png"); // 700×700
  const one = await preprocessImage(png, { maxNum: 1, maxPixels: MAX_PIXELS });
  assert.deepEqual([one.grid, one.tiles], [[1, 1], 1]);
  const atLeastTwo = await preprocessImage(png, { maxNum: 12, minNum: 2, maxPixels: MAX_PIXELS });
  // (1,1) is excluded by min_num 2; the first exact 1:1 candidate with enough area is (2,2), (3,3) is too big.
  assert.deepEqual([atLeastTwo.grid, atLeastTwo.tiles], [[2, 2], 5]);
  assert.equal(atLeastTwo.pixelValues.length, 5 * 3 * 448 * 448);
});

Deno.test("planImageTiles predicts preprocessImage's grid and tile count from the header alone", async () => {
  const dir = new URL("../fixtures/tiny-internvl/goldens/images/", import.meta.url);
  for (const name of ["square_rgba.png", "wide_tie.png", "tall.jpg", "square_big.png"]) {
    const bytes = await Deno.readFile(new URL(name, dir));
    for (const maxNum of [1, 2, 6, 12, 40]) {
      for (const useThumbnail of [true, false]) {
        const opts = { maxNum, useThumbnail, maxPixels: 1e8 };
        const full = await preprocessImage(bytes, opts);
        const plan = planImageTiles(bytes, opts);
        assert.deepEqual(plan, { tiles: full.tiles, grid: full.grid }, `${name} max ${maxNum}`);
      }
    }
  }
  const big = await Deno.readFile(new URL("square_big.png", dir));
  assert.throws(
    () => planImageTiles(big, { maxNum: 6, maxPixels: 1000 }),
    /Image is 700×700 pixels; the limit is 1000 pixels/,
  );
});
