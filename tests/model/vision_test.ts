import assert from "node:assert/strict";
import { decodeImage } from "../../src/image/decode_image.ts";
import { planImageTiles, preprocessImage } from "../../src/image/pixel_values.ts";
import { visionLayersLike } from "../../src/model/image_encoding.ts";
import { fullShapes } from "../../src/bench/shapes.ts";
import { snapshotTap } from "../../src/model/vision.ts";
import { compare, goldenF32, imageFile, manifest, tinyModel } from "./tiny_fixture.ts";
import { firstDifference } from "../kernels/check.ts";

// README tolerances: f32 kernels max |Δ| ≤ 1e-4, ‖Δ‖/‖ref‖ ≤ 1e-5.
const maxAbsTol = 1e-4, relTol = 1e-5;

Deno.test("the vision path reproduces the reference intermediates for img1", async () => {
  const model = await tinyModel();
  const img = await preprocessImage(imageFile("img1"), { maxNum: 6, maxPixels: 1e8 });
  const { tap, taken } = snapshotTap(
    model.gpu,
    (name, layer) =>
      name === "vit.embeddings" || (name === "vit.layer" && layer === model.dims.vision.layers - 1) ||
      name === "projector.out",
  );
  const out = model.encodeImages(img.pixelValues, img.tiles, tap);
  const vi = manifest.vision_intermediates;
  const checks: [string, string][] = [
    ["vit.embeddings:-1", vi.embeddings.file],
    [`vit.layer:${model.dims.vision.layers - 1}`, vi.vit_last_hidden_state.file],
    ["projector.out:-1", vi.mlp1_out.file],
  ];
  for (const [key, file] of checks) {
    const got = await model.gpu.readF32(taken.get(key)!);
    const { maxAbs, rel } = compare(got, goldenF32(file));
    assert.ok(maxAbs <= maxAbsTol && rel <= relTol, `${key}: max |Δ| ${maxAbs}, rel ${rel}`);
  }
  const { maxAbs } = compare(await model.gpu.readF32(out), goldenF32(manifest.images.img1.vit_embeds.file));
  assert.ok(maxAbs <= maxAbsTol, `vit_embeds max |Δ| ${maxAbs}`);
});

for (const key of ["img2", "img3"]) {
  Deno.test(`image embeddings of ${key} match extract_feature within tolerance`, async () => {
    const model = await tinyModel();
    const info = manifest.images[key];
    const img = await preprocessImage(imageFile(key), { maxNum: info.max_num, maxPixels: 1e8 });
    assert.equal(img.tiles, info.num_tiles);
    const out = model.encodeImages(img.pixelValues, img.tiles);
    const { maxAbs, rel } = compare(await model.gpu.readF32(out), goldenF32(info.vit_embeds.file));
    assert.ok(maxAbs <= maxAbsTol && rel <= relTol, `max |Δ| ${maxAbs}, rel ${rel}`);
    out.buffer.destroy();
  });
}

Deno.test("an encoding submitted a piece at a time gives encodeImages' embeddings, from pixels or decoded images", async (t) => {
  const model = await tinyModel();
  const info = manifest.images.img2; // 4 tiles (3×1 grid + thumbnail)
  const options = { maxNum: info.max_num, maxPixels: 1e8 };
  const bytes = imageFile("img2");
  const img = await preprocessImage(bytes, options);
  const { grid, tiles } = planImageTiles(bytes, options);
  const decoded = [{ image: await decodeImage(bytes, options), grid, thumbnail: tiles > grid[0] * grid[1] }];
  // One pass of 4 tiles, checked against extract_feature above.
  const whole = await model.gpu.readF32(model.encodeImages(img.pixelValues, img.tiles));
  const L = model.dims.vision.layers;
  for (const [name, input] of [["pixels", img.pixelValues], ["decoded", decoded]] as const) {
    await t.step(`${name}: a layer a piece, passes of 3 + 1 tiles`, async () => {
      const encoding = model.beginImageEncoding(input, img.tiles, { layersPerPiece: 1, maxTilesPerPass: 3 });
      assert.throws(() => encoding.take(), /before the last piece/);
      let pieces = 1;
      while (!encoding.step()) pieces++;
      assert.equal(pieces, 2 * L, "one piece per layer of each pass");
      assert.ok(encoding.done);
      const out = encoding.take();
      encoding.destroy();
      const row = model.dims.projector.hidden;
      assert.equal(
        firstDifference(await model.gpu.readF32(out), whole, (i) => `embedding row ${Math.floor(i / row)}`),
        "",
      );
      out.buffer.destroy();
    });
  }
  assert.throws(
    () => model.beginImageEncoding(img.pixelValues, img.tiles, { layersPerPiece: 0 }),
    /layersPerPiece 0 must be a positive integer/,
  );
});

Deno.test("visionLayersLike: InternViT-6B layers with about the arithmetic of a prompt chunk of InternLM2-20B", () => {
  const { vision, language } = fullShapes;
  // 256 ids: 2 · 18.72 G weights · 256 = 9.59 TFLOP; a layer over 7 tiles: 7 · 265.4 GFLOP = 1.86 TFLOP.
  assert.equal(visionLayersLike(vision, language, 256, 7), 5);
  assert.equal(visionLayersLike(vision, language, 512, 7), 10);
  assert.equal(visionLayersLike(vision, language, 64, 13), 1, "at least one layer");
  assert.equal(visionLayersLike(vision, language, 1024, 1), 45, "at most every layer");
});
