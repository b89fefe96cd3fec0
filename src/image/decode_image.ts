/**
 * Encoded image bytes → RGB8, matching Pillow 9.4 `Image.open(f).convert('RGB')` (the reference
 * `load_image`): no EXIF rotation, alpha dropped without compositing, gray replicated to three channels.
 * The declared size is checked against `maxPixels` from the header alone, before any decoding.
 */
import { InputError } from "../errors.ts";
import { type ImageHeader, readImageHeader } from "./image_header.ts";
import { decodePng } from "./png_decoder.ts";
import { decodeTiff } from "./tiff_decoder.ts";
import { newRgbImage, type RgbImage } from "./rgb_image.ts";
// imagescript's JPEG wasm codec, loaded directly: the package entry point also loads a native (FFI)
// codec we do not need. Untyped CommonJS; the shapes we use are declared below. (Its TIFF codec traps
// on every input under Deno, hence our own tiff_decoder.ts.)
import jpegCodec from "imagescript/wasm/node/jpeg.js";

export type { RgbImage } from "./rgb_image.ts";

export interface DecodeOptions {
  /** Largest accepted width × height, as declared in the header. */
  maxPixels: number;
}

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

function decodeFailed(format: string, err: unknown): InputError {
  return new InputError(
    `${format} image is corrupt or truncated: the decoder failed (${(err as Error)?.message ?? err})`,
    { code: "invalid_image" },
  );
}

function checkSize(format: string, fb: WasmFramebuffer, width: number, height: number): void {
  if (fb.width !== width || fb.height !== height) {
    throw new InputError(
      `${format} image decoded to ${fb.width}×${fb.height} but its header declares ${width}×${height}`,
      { code: "invalid_image" },
    );
  }
}

async function decodeJpeg(bytes: Uint8Array, width: number, height: number): Promise<RgbImage> {
  let fb: WasmFramebuffer;
  try {
    fb = (await freshDecoder(jpegCodec as unknown as WasmCodec)).decode(bytes);
  } catch (err) {
    throw decodeFailed("JPEG", err);
  }
  checkSize("JPEG", fb, width, height);
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

/**
 * Decodes PNG, JPEG or TIFF bytes to RGB8.
 * Throws InputError: 413 `image_too_large` when the header declares more than `maxPixels` pixels
 * (nothing is decoded then), 400 `unsupported_image_format` / `invalid_image` otherwise.
 */
export async function decodeImage(bytes: Uint8Array, { maxPixels }: DecodeOptions): Promise<RgbImage> {
  const { format, width, height } = checkedImageHeader(bytes, maxPixels);
  if (format === "PNG") return await decodePng(bytes);
  if (format === "JPEG") return await decodeJpeg(bytes, width, height);
  return await decodeTiff(bytes, width, height);
}

/** The header of a supported image whose declared size is non-zero and at most `maxPixels` (no decoding). */
export function checkedImageHeader(bytes: Uint8Array, maxPixels: number): ImageHeader {
  const header = readImageHeader(bytes);
  const { format, width, height } = header;
  if (width === 0 || height === 0) {
    throw new InputError(`${format} image has zero size (${width}×${height} pixels)`, {
      code: "invalid_image",
    });
  }
  if (width * height > maxPixels) {
    throw new InputError(`Image is ${width}×${height} pixels; the limit is ${maxPixels} pixels`, {
      status: 413,
      code: "image_too_large",
    });
  }
  return header;
}
