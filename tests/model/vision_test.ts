import assert from "node:assert/strict";
import { preprocessImage } from "../../src/image/pixel_values.ts";
import { snapshotTap } from "../../src/model/vision.ts";
import { compare, goldenF32, imageFile, manifest, tinyModel } from "./tiny_fixture.ts";

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

Deno.test("tiles encoded in several passes give the same embeddings as one pass", async () => {
  const model = await tinyModel();
  const info = manifest.images.img2; // 4 tiles (3×1 grid + thumbnail)
  const img = await preprocessImage(imageFile("img2"), { maxNum: info.max_num, maxPixels: 1e8 });
  const one = model.encodeImages(img.pixelValues, img.tiles);
  const split = model.encodeImages(img.pixelValues, img.tiles, undefined, 3); // passes of 3 + 1 tiles
  const a = await model.gpu.readF32(one), b = await model.gpu.readF32(split);
  assert.deepEqual(b, a);
  const { maxAbs } = compare(b, goldenF32(info.vit_embeds.file));
  assert.ok(maxAbs <= maxAbsTol, `max |Δ| ${maxAbs}`);
  assert.ok(model.maxTilesPerPass >= 1);
});
