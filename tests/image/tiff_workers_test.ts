import assert from "node:assert/strict";
import { firstDifference } from "../kernels/check.ts";
import { decodeImage } from "../../src/image/decode_image.ts";
import { InputError } from "../../src/errors.ts";
import { ImageWorkers } from "../../src/image/image_workers.ts";
import { rng } from "../../src/ref/random.ts";
import { concat, encodeTiff, type TiffSpec } from "./image_test_util.ts";

const LIMIT = { maxPixels: 50_000_000 };

const byteDifference = (a: Uint8Array, b: Uint8Array) => firstDifference(a, b, (i) => `byte ${i}`);

/** A TIFF of random samples at a random odd size: few levels, so LZW strings and PackBits runs are long. */
function randomTiff(seed: number, spec: Omit<TiffSpec, "width" | "height" | "pixels">): Promise<Uint8Array> {
  const r = rng(seed);
  const width = 3 + Math.floor(r() * 41), height = 2 + Math.floor(r() * 23);
  const pixels = Uint8Array.from({ length: width * height * spec.samples }, () => Math.floor(r() * 5) * 60);
  const rowsPerStrip = 1 + Math.floor(r() * height);
  return encodeTiff({ width, height, pixels, rowsPerStrip, ...spec });
}

/** The error decodeImage gives for `file`, without and with workers. */
async function bothErrors(file: Uint8Array, workers: ImageWorkers): Promise<[unknown, unknown]> {
  const alone = await decodeImage(file, LIMIT).then(() => null, (e) => e);
  const pooled = await decodeImage(file, LIMIT, workers).then(() => null, (e) => e);
  return [alone, pooled];
}

Deno.test("decodeImage with ImageWorkers decodes TIFFs to the bytes of the calling thread, and fails them alike", async (t) => {
  const workers = new ImageWorkers(2);
  try {
    await t.step("every compression, predictor, photometric and byte order", async () => {
      const kinds: Omit<TiffSpec, "width" | "height" | "pixels">[] = [
        { samples: 3 },
        { samples: 4 },
        { samples: 1 },
        { samples: 2 },
        { samples: 1, photometric: 0 },
        {
          samples: 1,
          photometric: 3,
          colorMap: Array.from({ length: 768 }, (_, i) => (i * 2654435761) >>> 16),
        },
      ];
      let seed = 1;
      for (const kind of kinds) {
        for (const compression of [1, 5, 8, 32773] as const) {
          for (const predictor of [1, 2] as const) {
            const tiff = await randomTiff(seed, {
              ...kind,
              compression,
              predictor,
              bigEndian: seed % 3 === 0,
            });
            seed++;
            const alone = await decodeImage(tiff, LIMIT);
            const pooled = await decodeImage(tiff, LIMIT, workers);
            assert.deepEqual([pooled.width, pooled.height], [alone.width, alone.height]);
            const what = `samples ${kind.samples}, photometric ${kind.photometric ?? "default"}, ` +
              `compression ${compression}, predictor ${predictor}`;
            assert.equal(byteDifference(pooled.data, alone.data), "", what);
          }
        }
      }
    });
    await t.step("broken and unsupported files give the same InputError", async () => {
      const px = Uint8Array.from({ length: 6 * 5 * 3 }, (_, i) => (i * 37) & 0xff);
      const deflate = await encodeTiff({ width: 6, height: 5, samples: 3, pixels: px, compression: 8 });
      // The strip is the file's tail (encodeTiff writes it last).
      const flipped = deflate.slice();
      flipped[flipped.length - 6] ^= 0x5a;
      const cases: Record<string, Uint8Array> = {
        "a strip cut off": deflate.subarray(0, deflate.length - 4),
        "flipped bits in a Deflate strip": flipped,
        "premultiplied alpha": await encodeTiff({
          width: 2,
          height: 2,
          samples: 4,
          pixels: new Uint8Array(16).fill(9),
          extraSamples: 1,
        }),
      };
      for (const [what, file] of Object.entries(cases)) {
        const [alone, pooled] = await bothErrors(file, workers);
        assert.ok(
          alone instanceof InputError && pooled instanceof InputError,
          `${what}: ${alone} / ${pooled}`,
        );
        assert.deepEqual(
          [pooled.message, pooled.code, pooled.status],
          [alone.message, alone.code, alone.status],
          what,
        );
      }
    });
    await t.step(
      "a Deflate strip with bytes after its stream (the stream path, as on the calling thread)",
      async () => {
        const px = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 11) & 0xff);
        const tiff = await encodeTiff({ width: 4, height: 3, samples: 3, pixels: px, compression: 8 });
        // Strip byte count (tag 279) grows by the 5 bytes appended to the file's tail, the strip.
        const grown = concat([tiff, new Uint8Array([1, 2, 3, 4, 5])]);
        const view = new DataView(grown.buffer);
        const entries = view.getUint16(8, true);
        let patched = false;
        for (let e = 0; e < entries; e++) {
          const at = 10 + 12 * e;
          if (view.getUint16(at, true) === 279) {
            view.setUint32(at + 8, view.getUint32(at + 8, true) + 5, true);
            patched = true;
          }
        }
        assert.ok(patched, "StripByteCounts found");
        const alone = await decodeImage(grown, LIMIT);
        assert.deepEqual(alone.data, px);
        assert.equal(byteDifference((await decodeImage(grown, LIMIT, workers)).data, alone.data), "");
      },
    );
  } finally {
    workers.close();
  }
});
