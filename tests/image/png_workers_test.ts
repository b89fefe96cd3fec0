import assert from "node:assert/strict";
import { firstDifference } from "../kernels/check.ts";
import { decodeImage } from "../../src/image/decode_image.ts";
import { InputError } from "../../src/errors.ts";
import { ImageWorkers } from "../../src/image/image_workers.ts";
import { rng } from "../../src/ref/random.ts";
import {
  concat,
  encodePng,
  ihdr,
  manifestImages,
  PNG_SIGNATURE,
  pngChunk,
  readGolden,
  zlibCompress,
} from "./image_test_util.ts";

const LIMIT = { maxPixels: 50_000_000 };

const byteDifference = (a: Uint8Array, b: Uint8Array) => firstDifference(a, b, (i) => `byte ${i}`);

/** A PNG of random samples: every colour type and depth, interlaced or not, one filter type for all rows. */
function randomPng(
  seed: number,
  colorType: number,
  bitDepth: number,
  interlace: boolean,
): Promise<Uint8Array> {
  const r = rng(seed);
  const width = 3 + Math.floor(r() * 29), height = 2 + Math.floor(r() * 17);
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
  const max = colorType === 3 ? 6 : 2 ** bitDepth; // palette indices past PLTE read the gray ramp
  const samples = Array.from({ length: width * height * channels }, () => Math.floor(r() * max));
  const palette = colorType === 3 ? Array.from({ length: 4 * 3 }, () => Math.floor(r() * 256)) : undefined;
  return encodePng({ width, height, bitDepth, colorType, samples, palette, interlace, filter: seed % 5 });
}

Deno.test("decodeImage with ImageWorkers decodes PNGs to the bytes of the calling thread, and fails them alike", async (t) => {
  const workers = new ImageWorkers(2);
  try {
    await t.step("every colour type and bit depth, plain and interlaced, every filter type", async () => {
      const kinds: [number, number][] = [
        [0, 1],
        [0, 2],
        [0, 4],
        [0, 8],
        [0, 16],
        [2, 8],
        [2, 16],
        [3, 1],
        [3, 2],
        [3, 4],
        [3, 8],
        [4, 8],
        [4, 16],
        [6, 8],
        [6, 16],
      ];
      let seed = 1;
      for (const [colorType, bitDepth] of kinds) {
        for (const interlace of [false, true]) {
          const png = await randomPng(seed++, colorType, bitDepth, interlace);
          const alone = await decodeImage(png, LIMIT);
          const pooled = await decodeImage(png, LIMIT, workers);
          assert.deepEqual([pooled.width, pooled.height], [alone.width, alone.height]);
          assert.equal(
            byteDifference(pooled.data, alone.data),
            "",
            `colour type ${colorType}, depth ${bitDepth}`,
          );
        }
      }
    });
    await t.step("the fixture PNGs", async () => {
      for (const [key, rec] of Object.entries(await manifestImages())) {
        if (rec.format !== "PNG") continue;
        const bytes = await readGolden(rec.file);
        const pooled = await decodeImage(bytes, LIMIT, workers);
        assert.equal(byteDifference(pooled.data, (await decodeImage(bytes, LIMIT)).data), "", key);
      }
    });
    await t.step("corrupt data, a short stream and bytes after the stream", async () => {
      const raw = new Uint8Array(4 * (1 + 4 * 3)).map((_, i) => (i % 13 === 0 ? 0 : i * 7));
      const z = await zlibCompress(raw);
      const png = (idat: Uint8Array) =>
        concat([
          PNG_SIGNATURE,
          ihdr(4, 4, 8, 2, 0),
          pngChunk("IDAT", idat),
          pngChunk("IEND", new Uint8Array(0)),
        ]);
      const flipped = z.slice();
      flipped[z.length >> 1] ^= 0x5a;
      const cases = {
        "a cut stream": png(z.subarray(0, z.length >> 1)),
        "flipped bits": png(flipped),
        "a bad header": png(new Uint8Array([0x12, 0x34, ...z.subarray(2)])),
      };
      for (const [what, file] of Object.entries(cases)) {
        const alone = await decodeImage(file, LIMIT).then(() => null, (e) => e);
        const pooled = await decodeImage(file, LIMIT, workers).then(() => null, (e) => e);
        assert.ok(
          alone instanceof InputError && pooled instanceof InputError,
          `${what}: ${alone} / ${pooled}`,
        );
        assert.deepEqual([pooled.message, pooled.code, pooled.status], [
          alone.message,
          alone.code,
          alone.status,
        ], what);
      }
      // Bytes after the zlib stream: node:zlib refuses them, the stream path ignores them, as Pillow does.
      const trailing = png(concat([z, new Uint8Array([1, 2, 3, 4, 5])]));
      const alone = await decodeImage(trailing, LIMIT);
      assert.equal(byteDifference((await decodeImage(trailing, LIMIT, workers)).data, alone.data), "");
    });
  } finally {
    workers.close();
  }
});
