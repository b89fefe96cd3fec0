import assert from "node:assert/strict";
import { decodeImage } from "../../src/image/decode_image.ts";
import { normalizationTable, planImageTiles, preprocessImage } from "../../src/image/pixel_values.ts";
import { type DecodedImage, GpuTiling } from "../../src/model/gpu_tiling.ts";
import { firstDifference, testGpu } from "../kernels/check.ts";
import { imageFile, manifest } from "./tiny_fixture.ts";

const S = 448;
const options = { maxNum: 6, maxPixels: 50_000_000 };

async function decoded(bytes: Uint8Array): Promise<DecodedImage> {
  const { grid, tiles } = planImageTiles(bytes, options);
  return { image: await decodeImage(bytes, options), grid, thumbnail: tiles > grid[0] * grid[1] };
}

const tileDifference = (a: Float32Array, b: Float32Array) =>
  firstDifference(a, b, (i) => `value ${i} (tile ${Math.floor(i / (3 * S * S))})`);

Deno.test("GpuTiling writes preprocessImage's pixel values of every fixture image, in groups of any size", async (t) => {
  const gpu = await testGpu();
  const lut = gpu.uploadTensor("lut", "f32", [768], normalizationTable());
  const keys = Object.keys(manifest.images); // PNGs (RGBA, a tie, 2×2 + thumbnail) and a JPEG
  const files = keys.map((k) => imageFile(k, true));
  const want: Float32Array[] = [];
  for (const bytes of files) want.push((await preprocessImage(bytes, options)).pixelValues);
  const all = new Float32Array(want.reduce((n, w) => n + w.length, 0));
  want.reduce((at, w) => (all.set(w, at), at + w.length), 0);
  const tiling = new GpuTiling(gpu, await Promise.all(files.map(decoded)), S);
  assert.equal(tiling.tiles * 3 * S * S, all.length, "tile count");
  const rows = gpu.recorder("rows");
  tiling.recordRows(rows);
  rows.submit();
  for (const group of [tiling.tiles, 4, 3]) {
    await t.step(`${keys.join(", ")} in groups of ${group} tiles`, async () => {
      const got = new Float32Array(all.length);
      for (let first = 0; first < tiling.tiles; first += group) {
        const n = Math.min(group, tiling.tiles - first);
        const out = gpu.createTensor("pixels", "f32", [n, 3, S, S]);
        const r = gpu.recorder("tiles");
        tiling.recordTiles(r, lut, out, first);
        r.submit();
        got.set(await gpu.readF32(out), first * 3 * S * S);
        out.buffer.destroy();
      }
      assert.equal(tileDifference(got, all), "");
    });
  }
  tiling.destroy();
});
