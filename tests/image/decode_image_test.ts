import assert from "node:assert/strict";
import { InputError } from "../../src/errors.ts";
import { decodeImage } from "../../src/image/decode_image.ts";
import {
  concat,
  encodePng,
  encodeTiff,
  ihdr,
  manifestImages,
  PNG_SIGNATURE,
  pngChunk,
  readGolden,
  sha256Hex,
  zlibCompress,
} from "./image_test_util.ts";

const LIMIT = { maxPixels: 50_000_000 };

/** Runs `fn` and checks it throws an InputError with this status/code and a message matching `pattern`. */
async function assertInputError(
  fn: () => Promise<unknown>,
  status: number,
  code: string,
  pattern: RegExp,
): Promise<void> {
  const err = await fn().then(() => null, (e) => e);
  assert.ok(err instanceof InputError, `expected InputError, got ${err}`);
  assert.equal(err.status, status);
  assert.equal(err.code, code);
  assert.match(err.message, pattern);
}

Deno.test("decodeImage reproduces Pillow's decoded RGB of every fixture image", async (t) => {
  const images = await manifestImages();
  for (const [key, rec] of Object.entries(images)) {
    await t.step(`${key} (${rec.format}, ${rec.orig_size.join("×")})`, async () => {
      const img = await decodeImage(await readGolden(rec.file), LIMIT);
      assert.deepEqual([img.width, img.height], rec.orig_size);
      assert.equal(img.data.length, img.width * img.height * 3);
      if (rec.format === "PNG") {
        assert.equal(await sha256Hex(img.data), rec.decoded_rgb_sha256);
        return;
      }
      // JPEG: our decoder reproduces libjpeg-turbo, so Pillow's RGB exactly (the decoded.png holds it).
      assert.ok(rec.decoded_rgb_png, "JPEG fixtures come with a *.decoded.png");
      const pil = await decodeImage(await readGolden(rec.decoded_rgb_png!), LIMIT);
      assert.equal(await sha256Hex(pil.data), rec.decoded_rgb_sha256, "the decoded.png holds Pillow's RGB");
      let first = 0;
      while (first < img.data.length && img.data[first] === pil.data[first]) first++;
      assert.equal(first, img.data.length, `JPEG decode differs from Pillow first at byte ${first}`);
      assert.equal(await sha256Hex(img.data), rec.decoded_rgb_sha256);
    });
  }
});

Deno.test("decodeImage keeps the stored colour of fully transparent RGBA pixels (no compositing)", async () => {
  // Two pixels with alpha 0 and a colour that compositing on black or white would destroy.
  const samples = [200, 100, 50, 0, 7, 250, 3, 0, 10, 20, 30, 255, 40, 50, 60, 128];
  const img = await decodeImage(
    await encodePng({ width: 2, height: 2, bitDepth: 8, colorType: 6, samples }),
    LIMIT,
  );
  assert.deepEqual(Array.from(img.data), [200, 100, 50, 7, 250, 3, 10, 20, 30, 40, 50, 60]);
});

Deno.test("decodeImage maps every PNG colour type and bit depth like Pillow's convert('RGB')", async (t) => {
  const cases: { name: string; spec: Parameters<typeof encodePng>[0]; rgb: number[] }[] = [
    {
      name: "1-bit gray → 0/255",
      spec: { width: 9, height: 1, bitDepth: 1, colorType: 0, samples: [1, 0, 1, 1, 0, 0, 1, 0, 1] },
      rgb: [1, 0, 1, 1, 0, 0, 1, 0, 1].flatMap((v) => [v * 255, v * 255, v * 255]),
    },
    {
      name: "2-bit gray → ×85",
      spec: { width: 5, height: 1, bitDepth: 2, colorType: 0, samples: [0, 1, 2, 3, 2] },
      rgb: [0, 85, 170, 255, 170].flatMap((v) => [v, v, v]),
    },
    {
      name: "4-bit gray → ×17",
      spec: { width: 3, height: 1, bitDepth: 4, colorType: 0, samples: [0, 9, 15] },
      rgb: [0, 153, 255].flatMap((v) => [v, v, v]),
    },
    {
      name: "8-bit gray is replicated",
      spec: { width: 2, height: 1, bitDepth: 8, colorType: 0, samples: [17, 240] },
      rgb: [17, 17, 17, 240, 240, 240],
    },
    {
      name: "16-bit gray clips to 255 (PIL mode I), it does not rescale",
      spec: { width: 3, height: 1, bitDepth: 16, colorType: 0, samples: [200, 256, 65535] },
      rgb: [200, 200, 200, 255, 255, 255, 255, 255, 255],
    },
    {
      name: "16-bit RGB keeps the high byte",
      spec: { width: 1, height: 1, bitDepth: 16, colorType: 2, samples: [0x1234, 0xabff, 0x00ff] },
      rgb: [0x12, 0xab, 0x00],
    },
    {
      name: "gray+alpha drops alpha",
      spec: { width: 2, height: 1, bitDepth: 8, colorType: 4, samples: [90, 0, 91, 255] },
      rgb: [90, 90, 90, 91, 91, 91],
    },
    {
      name: "16-bit gray+alpha keeps the high byte of gray",
      spec: { width: 1, height: 1, bitDepth: 16, colorType: 4, samples: [0x7f01, 0] },
      rgb: [0x7f, 0x7f, 0x7f],
    },
    {
      name: "16-bit RGBA keeps high bytes and drops alpha",
      spec: { width: 1, height: 1, bitDepth: 16, colorType: 6, samples: [0x0102, 0x0304, 0x0506, 0] },
      rgb: [1, 3, 5],
    },
    {
      name: "palette (4-bit) looks up PLTE; indices past it read PIL's gray ramp",
      spec: {
        width: 3,
        height: 1,
        bitDepth: 4,
        colorType: 3,
        samples: [1, 0, 9],
        palette: [1, 2, 3, 40, 50, 60],
      },
      rgb: [40, 50, 60, 1, 2, 3, 9, 9, 9],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const img = await decodeImage(await encodePng(c.spec), LIMIT);
      assert.deepEqual([img.width, img.height], [c.spec.width, c.spec.height]);
      assert.deepEqual(Array.from(img.data), c.rgb);
    });
  }
});

Deno.test("decodeImage undoes every PNG filter type and Adam7 interlacing", async (t) => {
  // 13×11 RGB with a pseudo-random pattern: odd sizes leave partial Adam7 blocks and empty passes.
  const width = 13, height = 11;
  const samples = Array.from({ length: width * height * 3 }, (_, i) => (i * 73 + (i >> 3) * 29) & 0xff);
  for (const interlace of [false, true]) {
    for (const filter of [0, 1, 2, 3, 4]) {
      await t.step(`filter ${filter}${interlace ? ", interlaced" : ""}`, async () => {
        const png = await encodePng({ width, height, bitDepth: 8, colorType: 2, samples, filter, interlace });
        const img = await decodeImage(png, LIMIT);
        assert.deepEqual(Array.from(img.data), samples);
      });
    }
  }
  await t.step("interlaced 2-bit gray 3×3 (sub-byte pixels in tiny passes)", async () => {
    const gray = [0, 1, 2, 3, 3, 2, 1, 0, 1];
    const img = await decodeImage(
      await encodePng({
        width: 3,
        height: 3,
        bitDepth: 2,
        colorType: 0,
        samples: gray,
        interlace: true,
        filter: 4,
      }),
      LIMIT,
    );
    assert.deepEqual(Array.from(img.data), gray.flatMap((v) => [v * 85, v * 85, v * 85]));
  });
});

Deno.test("decodeImage rejects unsupported formats and names the supported ones", async (t) => {
  const riff = new Uint8Array(
    [..."RIFF"].map((c) => c.charCodeAt(0)).concat([0, 0, 0, 0], [..."WEBPVP8 "].map((c) => c.charCodeAt(0))),
  );
  const cases: [string, Uint8Array, RegExp][] = [
    ["WebP", riff, /^Image format WebP is not supported; send PNG, JPEG or TIFF$/],
    [
      "GIF",
      new TextEncoder().encode("GIF89a\x01\x00\x01\x00\x00\x00\x00"),
      /^Image format GIF is not supported; send PNG, JPEG or TIFF$/,
    ],
    [
      "BMP",
      new TextEncoder().encode("BM\x00\x00\x00\x00\x00\x00\x00\x00"),
      /^Image format BMP is not supported; send PNG, JPEG or TIFF$/,
    ],
    [
      "SVG",
      new TextEncoder().encode('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
      /format SVG is not supported/,
    ],
    [
      "text",
      new TextEncoder().encode("hello world"),
      /^Image data is not a recognised image format \(first bytes 68 65 6c 6c 6f 20 77 6f\); send PNG, JPEG or TIFF$/,
    ],
  ];
  for (const [name, bytes, pattern] of cases) {
    await t.step(
      name,
      () => assertInputError(() => decodeImage(bytes, LIMIT), 400, "unsupported_image_format", pattern),
    );
  }
  await t.step(
    "empty",
    () =>
      assertInputError(
        () => decodeImage(new Uint8Array(0), LIMIT),
        400,
        "invalid_image",
        /^Image data is empty$/,
      ),
  );
});

Deno.test("decodeImage rejects corrupt and truncated images", async (t) => {
  const png = await readGolden("images/wide_tie.png");
  const jpeg = await readGolden("images/tall.jpg");
  await t.step(
    "PNG cut in the middle of its image data",
    () =>
      assertInputError(
        () => decodeImage(png.subarray(0, png.length >> 1), LIMIT),
        400,
        "invalid_image",
        /^PNG image is corrupt or truncated: chunk IDAT at byte \d+ is cut off$/,
      ),
  );
  await t.step("PNG whose zlib stream ends early (IDAT chunk complete, data short)", async () => {
    // 4×4 RGB, filter 0, incompressible samples so that cutting the stream loses pixels.
    const raw = new Uint8Array(4 * (1 + 4 * 3)).map((_, i) => (i % 13 === 0 ? 0 : (i * 151 + 7) & 0xff));
    const z = await zlibCompress(raw);
    const bytes = concat([
      PNG_SIGNATURE,
      ihdr(4, 4, 8, 2),
      pngChunk("IDAT", z.subarray(0, z.length >> 1)),
      pngChunk("IEND", new Uint8Array(0)),
    ]);
    await assertInputError(
      () => decodeImage(bytes, LIMIT),
      400,
      "invalid_image",
      /^PNG image is corrupt or truncated: image data (ends after \d+ of 52 bytes|does not inflate \(.+\))$/,
    );
  });
  await t.step("PNG with a bad header CRC", async () => {
    const bad = png.slice();
    bad[29] ^= 0xff; // IHDR CRC
    await assertInputError(
      () => decodeImage(bad, LIMIT),
      400,
      "invalid_image",
      /^PNG image is corrupt or truncated: bad CRC in chunk IHDR$/,
    );
  });
  await t.step(
    "PNG with an impossible colour type / depth",
    () =>
      assertInputError(
        () => decodeImage(concat([PNG_SIGNATURE, ihdr(1, 1, 16, 3)]), LIMIT),
        400,
        "invalid_image",
        /colour type 3 with bit depth 16 is not a valid combination/,
      ),
  );
  await t.step(
    "PNG signature only",
    () =>
      assertInputError(
        () => decodeImage(PNG_SIGNATURE, LIMIT),
        400,
        "invalid_image",
        /^PNG image is corrupt or truncated: the file is only 8 bytes/,
      ),
  );
  await t.step(
    "JPEG cut in half",
    () =>
      assertInputError(
        () => decodeImage(jpeg.subarray(0, jpeg.length >> 1), LIMIT),
        400,
        "invalid_image",
        /^JPEG image is corrupt or truncated: the image data is cut off or interrupted by a marker$/,
      ),
  );
  await t.step(
    "JPEG cut before its frame header",
    () =>
      assertInputError(
        () => decodeImage(jpeg.subarray(0, 20), LIMIT),
        400,
        "invalid_image",
        /^JPEG image is corrupt or truncated: no frame header/,
      ),
  );
});

/** A PNG that is only a signature and an IHDR claiming `width`×`height`: there is nothing to decode. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  return concat([PNG_SIGNATURE, ihdr(width, height, 8, 2)]);
}

/** A JPEG that is only SOI and a baseline SOF0 frame header claiming `width`×`height`. */
function jpegHeaderOnly(width: number, height: number): Uint8Array {
  return new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xc0,
    0,
    17,
    8,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    3,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ]);
}

/** A TIFF that is only a header and an IFD with ImageWidth/ImageLength. */
function tiffHeaderOnly(width: number, height: number): Uint8Array {
  const b = new Uint8Array(8 + 2 + 24 + 4);
  const v = new DataView(b.buffer);
  b.set([0x4d, 0x4d, 0, 42]); // big-endian ("MM") to cover that byte order too
  v.setUint32(4, 8);
  v.setUint16(8, 2);
  [[256, width], [257, height]].forEach(([tag, value], i) => {
    v.setUint16(10 + i * 12, tag);
    v.setUint16(12 + i * 12, 4);
    v.setUint32(14 + i * 12, 1);
    v.setUint32(18 + i * 12, value);
  });
  return b;
}

Deno.test("decodeImage refuses an image whose header declares too many pixels, before decoding it", async (t) => {
  // These files hold a header and no pixel data: decoding would fail with invalid_image, so a 413 proves
  // that the limit is enforced from the header alone.
  const message = /^Image is 100000×90000 pixels; the limit is 50000000 pixels$/;
  await t.step(
    "PNG",
    () =>
      assertInputError(
        () => decodeImage(pngHeaderOnly(100000, 90000), LIMIT),
        413,
        "image_too_large",
        message,
      ),
  );
  await t.step(
    "JPEG",
    () =>
      assertInputError(
        () => decodeImage(jpegHeaderOnly(60000, 50000), LIMIT),
        413,
        "image_too_large",
        /^Image is 60000×50000 pixels; the limit is 50000000 pixels$/,
      ),
  );
  await t.step(
    "TIFF (big-endian)",
    () =>
      assertInputError(
        () => decodeImage(tiffHeaderOnly(100000, 90000), LIMIT),
        413,
        "image_too_large",
        message,
      ),
  );
  await t.step(
    "just under the limit, the same header-only PNG fails as truncated instead",
    () =>
      assertInputError(
        () => decodeImage(pngHeaderOnly(5000, 10000), LIMIT),
        400,
        "invalid_image",
        /no image data/,
      ),
  );
  await t.step(
    "a real fixture with a limit one pixel too small",
    () =>
      assertInputError(
        async () => decodeImage(await readGolden("images/square_rgba.png"), { maxPixels: 300 * 280 - 1 }),
        413,
        "image_too_large",
        /^Image is 300×280 pixels; the limit is 83999 pixels$/,
      ),
  );
});

Deno.test("decodeImage rejects images with zero width or height", async (t) => {
  await t.step(
    "PNG 0×10",
    () =>
      assertInputError(
        () => decodeImage(pngHeaderOnly(0, 10), LIMIT),
        400,
        "invalid_image",
        /^PNG image has zero size \(0×10 pixels\)$/,
      ),
  );
  await t.step(
    "JPEG 10×0 (height defined later by DNL)",
    () =>
      assertInputError(
        () => decodeImage(jpegHeaderOnly(10, 0), LIMIT),
        400,
        "invalid_image",
        /^JPEG image has zero size \(10×0 pixels\)$/,
      ),
  );
});

Deno.test("decodeImage rejects JPEG variants Pillow reads but we cannot reproduce", async (t) => {
  const cmyk = new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xc0,
    0,
    20,
    8,
    0,
    8,
    0,
    8,
    4,
    1,
    0x11,
    0,
    2,
    0x11,
    0,
    3,
    0x11,
    0,
    4,
    0x11,
    0,
  ]);
  await t.step(
    "CMYK",
    () =>
      assertInputError(
        () => decodeImage(cmyk, LIMIT),
        400,
        "unsupported_image_format",
        /^JPEG with 4 colour components \(CMYK\/YCCK\) is not supported/,
      ),
  );
  const lossless = jpegHeaderOnly(8, 8);
  lossless[3] = 0xc3;
  await t.step(
    "lossless SOF3",
    () =>
      assertInputError(
        () => decodeImage(lossless, LIMIT),
        400,
        "unsupported_image_format",
        /^JPEG coding process SOF3 .* is not supported/,
      ),
  );
});

function noise(n: number, seed: number, levels = 256): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 24) % levels;
  }
  return out;
}

Deno.test("decodeImage reads baseline TIFF like Pillow's convert('RGB')", async (t) => {
  const w = 37, h = 23;
  const rgb = noise(w * h * 3, 1, 6); // few levels → long LZW strings and PackBits runs
  const cases: [string, Parameters<typeof encodeTiff>[0], number[] | Uint8Array][] = [
    ["RGB, uncompressed", { width: w, height: h, samples: 3, pixels: rgb }, rgb],
    ["RGB, LZW, 4-row strips", {
      width: w,
      height: h,
      samples: 3,
      pixels: rgb,
      compression: 5,
      rowsPerStrip: 4,
    }, rgb],
    ["RGB, Deflate + horizontal predictor", {
      width: w,
      height: h,
      samples: 3,
      pixels: rgb,
      compression: 8,
      predictor: 2,
    }, rgb],
    ["RGB, PackBits, big-endian", {
      width: w,
      height: h,
      samples: 3,
      pixels: rgb,
      compression: 32773,
      bigEndian: true,
    }, rgb],
  ];
  for (const [name, spec, expected] of cases) {
    await t.step(name, async () => {
      const img = await decodeImage(await encodeTiff(spec), LIMIT);
      assert.deepEqual([img.width, img.height], [w, h]);
      assert.deepEqual(img.data, Uint8Array.from(expected));
    });
  }
  await t.step("LZW over a large noisy image (code widths up to 12 bits and table resets)", async () => {
    const big = noise(160 * 120 * 3, 9);
    const img = await decodeImage(
      await encodeTiff({ width: 160, height: 120, samples: 3, pixels: big, compression: 5 }),
      LIMIT,
    );
    assert.deepEqual(img.data, big);
  });
  await t.step("RGBA with unassociated alpha drops alpha", async () => {
    const px = new Uint8Array([10, 20, 30, 0, 40, 50, 60, 255]);
    const img = await decodeImage(await encodeTiff({ width: 2, height: 1, samples: 4, pixels: px }), LIMIT);
    assert.deepEqual(Array.from(img.data), [10, 20, 30, 40, 50, 60]);
  });
  await t.step("gray, gray+alpha and WhiteIsZero (inverted, PIL L;I)", async () => {
    const gray = await decodeImage(
      await encodeTiff({ width: 2, height: 1, samples: 1, pixels: new Uint8Array([5, 250]) }),
      LIMIT,
    );
    assert.deepEqual(Array.from(gray.data), [5, 5, 5, 250, 250, 250]);
    const la = await decodeImage(
      await encodeTiff({ width: 1, height: 1, samples: 2, pixels: new Uint8Array([77, 0]) }),
      LIMIT,
    );
    assert.deepEqual(Array.from(la.data), [77, 77, 77]);
    const wiz = await decodeImage(
      await encodeTiff({ width: 2, height: 1, samples: 1, pixels: new Uint8Array([0, 200]), photometric: 0 }),
      LIMIT,
    );
    assert.deepEqual(Array.from(wiz.data), [255, 255, 255, 55, 55, 55]);
  });
  await t.step("palette keeps the high byte of the 16-bit ColorMap", async () => {
    const colorMap = new Array(768).fill(0);
    colorMap[3] = 0xab12; // red of index 3
    colorMap[256 + 3] = 0x00ff; // green
    colorMap[512 + 3] = 0xffff; // blue
    const img = await decodeImage(
      await encodeTiff({
        width: 1,
        height: 1,
        samples: 1,
        pixels: new Uint8Array([3]),
        photometric: 3,
        colorMap,
      }),
      LIMIT,
    );
    assert.deepEqual(Array.from(img.data), [0xab, 0x00, 0xff]);
  });
});

Deno.test("decodeImage rejects TIFF variants it does not read and broken TIFFs", async (t) => {
  const px = new Uint8Array(4 * 4 * 4);
  await t.step("premultiplied alpha", async () => {
    const tiff = await encodeTiff({ width: 4, height: 4, samples: 4, pixels: px, extraSamples: 1 });
    await assertInputError(
      () => decodeImage(tiff, LIMIT),
      400,
      "unsupported_image_format",
      /^TIFF with premultiplied \(associated\) alpha is not supported; send an 8-bit RGB or grayscale TIFF, PNG or JPEG$/,
    );
  });
  await t.step("JPEG-in-TIFF compression", async () => {
    const tiff = await encodeTiff({ width: 4, height: 4, samples: 3, pixels: px.subarray(0, 48) });
    const view = new DataView(tiff.buffer);
    // Patch the Compression entry (4th IFD entry: tag 259) to 7 = JPEG.
    assert.equal(view.getUint16(10 + 3 * 12, true), 259);
    view.setUint16(10 + 3 * 12 + 8, 7, true);
    await assertInputError(
      () => decodeImage(tiff, LIMIT),
      400,
      "unsupported_image_format",
      /^TIFF with compression 7 is not supported/,
    );
  });
  await t.step("strip cut off", async () => {
    const tiff = await encodeTiff({ width: 4, height: 4, samples: 3, pixels: px.subarray(0, 48) });
    await assertInputError(
      () => decodeImage(tiff.subarray(0, tiff.length - 10), LIMIT),
      400,
      "invalid_image",
      /^TIFF image is corrupt or truncated: strip 0 runs past the end of the data$/,
    );
  });
  await t.step("LZW stream cut short", async () => {
    const tiff = await encodeTiff({
      width: 16,
      height: 16,
      samples: 3,
      pixels: noise(768, 3),
      compression: 5,
    });
    const view = new DataView(tiff.buffer);
    const countEntry = 10 + 8 * 12; // StripByteCounts (tag 279) is the 9th entry
    assert.equal(view.getUint16(countEntry, true), 279);
    view.setUint32(countEntry + 8, 100, true);
    await assertInputError(
      () => decodeImage(tiff, LIMIT),
      400,
      "invalid_image",
      /^TIFF image is corrupt or truncated: LZW data ends after \d+ of 768 bytes$/,
    );
  });
});
