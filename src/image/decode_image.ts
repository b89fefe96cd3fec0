/**
 * Encoded image bytes → RGB8, matching Pillow 9.4 `Image.open(f).convert('RGB')` (the reference
 * `load_image`): no EXIF rotation, alpha dropped without compositing, gray replicated to three channels.
 * The declared size is checked against `maxPixels` from the header alone, before any decoding.
 */
import { InputError } from "../errors.ts";
import { type ImageHeader, readImageHeader, sniffFormat } from "./image_header.ts";
import type { ImageWorkers } from "./image_workers.ts";
import { decodeJpegWithImagescript } from "./imagescript_jpeg.ts";
import { decodeJpegRgb, JpegCorrupt, JpegUnsupported } from "./jpeg_decoder.ts";
import { decodePng } from "./png_decoder.ts";
import { decodeTiff } from "./tiff_decoder.ts";
import type { RgbImage } from "./rgb_image.ts";

export type { RgbImage } from "./rgb_image.ts";

export interface DecodeOptions {
  /** Largest accepted width × height, as declared in the header. */
  maxPixels: number;
}

/**
 * Our libjpeg-turbo-exact decoder (src/image/jpeg_decoder.ts), all but its markers on `workers` when
 * given (ImageWorkers.decodeJpeg: this thread stays free); imagescript for what ours does not reproduce (JpegUnsupported: the header check already refuses
 * most of that).
 */
async function decodeJpeg(
  bytes: Uint8Array,
  width: number,
  height: number,
  workers?: ImageWorkers,
): Promise<RgbImage> {
  let img: RgbImage;
  try {
    img = workers ? await workers.decodeJpeg(bytes) : decodeJpegRgb(bytes);
  } catch (err) {
    if (err instanceof JpegUnsupported) return await decodeJpegWithImagescript(bytes, width, height);
    if (err instanceof JpegCorrupt) {
      throw new InputError(`JPEG image is corrupt or truncated: ${err.message}`, { code: "invalid_image" });
    }
    throw err;
  }
  if (img.width !== width || img.height !== height) {
    // Only one frame header is accepted, so this is the header reader and the decoder disagreeing.
    throw new InputError(
      `JPEG image decoded to ${img.width}×${img.height} but its header declares ${width}×${height}`,
      { code: "invalid_image" },
    );
  }
  return img;
}

/**
 * Decodes PNG, JPEG or TIFF bytes to RGB8. With `workers`, all of it but the header runs there (a JPEG's
 * entropy decoding and row reconstruction as jobs of their own; a PNG or TIFF as one job): the same bytes,
 * backed by a SharedArrayBuffer.
 * Throws InputError: 413 `image_too_large` when the header declares more than `maxPixels` pixels
 * (nothing is decoded then), 400 `unsupported_image_format` / `invalid_image` otherwise.
 */
export async function decodeImage(
  bytes: Uint8Array,
  { maxPixels }: DecodeOptions,
  workers?: ImageWorkers,
): Promise<RgbImage> {
  const { format, width, height } = checkedImageHeader(bytes, maxPixels);
  if (format === "JPEG") return await decodeJpeg(bytes, width, height, workers);
  if (workers) return await workers.decodeFile(format, bytes, width, height);
  return format === "PNG" ? await decodePng(bytes) : await decodeTiff(bytes, width, height);
}

/**
 * Whether `decodeImage` given workers leaves the calling thread free for these bytes, by their magic bytes
 * alone: every format it reads decodes on the workers (anything else fails at the header, on no worker).
 */
export function decodesOnWorkers(bytes: Uint8Array): boolean {
  return sniffFormat(bytes) !== null;
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
