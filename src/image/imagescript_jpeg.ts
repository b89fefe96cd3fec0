/**
 * imagescript's wasm JPEG decoder: the fallback for JPEGs that src/image/jpeg_decoder.ts does not
 * reproduce (it answers JpegUnsupported), and the baseline scripts/bench_image.ts compares against. It is
 * not libjpeg-turbo: it differs from Pillow by a few LSB on some samples (tests/image/decode_image_test.ts).
 */
import { InputError } from "../errors.ts";
import { newRgbImage, type RgbImage } from "./rgb_image.ts";
// imagescript's JPEG wasm codec, loaded directly: the package entry point also loads a native (FFI)
// codec we do not need. Untyped CommonJS; the shapes we use are declared below. (Its TIFF codec traps
// on every input under Deno, hence our own tiff_decoder.ts.)
import jpegCodec from "imagescript/wasm/node/jpeg.js";

interface WasmFramebuffer {
  width: number;
  height: number;
  /** 0 = gray [H,W], 1 = RGB [H,W,3], 2 = CMYK [H,W,4]. */
  format: number;
  buffer: Uint8Array;
}
interface WasmDecoder {
  decode(bytes: Uint8Array): WasmFramebuffer;
}
interface WasmCodec {
  init(): Promise<WasmDecoder>;
  "new"(): WasmDecoder;
}

/**
 * A fresh wasm instance per image: a decoder that traps on hostile input leaves its instance in an
 * undefined state, and instances are cheap once the module is compiled (by the first `init`).
 */
async function freshDecoder(codec: WasmCodec): Promise<WasmDecoder> {
  await codec.init();
  return codec.new();
}

function invalid(why: string): InputError {
  return new InputError(`JPEG image is corrupt or truncated: ${why}`, { code: "invalid_image" });
}

/** Decodes with imagescript; `width`×`height` is what the header declared (checked against the result). */
export async function decodeJpegWithImagescript(
  bytes: Uint8Array,
  width: number,
  height: number,
): Promise<RgbImage> {
  let fb: WasmFramebuffer;
  try {
    fb = (await freshDecoder(jpegCodec as unknown as WasmCodec)).decode(bytes);
  } catch (err) {
    throw invalid(`the decoder failed (${(err as Error)?.message ?? err})`);
  }
  if (fb.width !== width || fb.height !== height) {
    throw new InputError(
      `JPEG image decoded to ${fb.width}×${fb.height} but its header declares ${width}×${height}`,
      { code: "invalid_image" },
    );
  }
  const img = newRgbImage(width, height);
  const n = width * height;
  if (fb.format === 1 && fb.buffer.length >= n * 3) {
    img.data.set(fb.buffer.subarray(0, n * 3));
  } else if (fb.format === 0 && fb.buffer.length >= n) {
    // PIL "L" → "RGB" replicates the gray value.
    for (let i = 0; i < n; i++) img.data[i * 3] = img.data[i * 3 + 1] = img.data[i * 3 + 2] = fb.buffer[i];
  } else {
    // The header check admits only 1- and 3-component frames, so this is a decoder surprise.
    throw new InputError(`JPEG image decoded to an unsupported pixel layout (${fb.format})`, {
      code: "unsupported_image_format",
    });
  }
  return img;
}
