/**
 * Format sniffing and header-only size reading, so that an oversized or unsupported upload is refused
 * before a single pixel is decoded (a 100-byte PNG can declare 2^31 × 2^31 pixels).
 */
import { InputError } from "../errors.ts";

/** Formats this server decodes (the ones Pillow opens for the reference and we can reproduce). */
export type SupportedFormat = "PNG" | "JPEG" | "TIFF";

export const SUPPORTED_FORMATS_TEXT = "PNG, JPEG or TIFF";

export interface ImageHeader {
  format: SupportedFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  return prefix.every((b, i) => bytes[at + i] === b);
}

function ascii(text: string): number[] {
  return Array.from(text, (c) => c.charCodeAt(0));
}

/** Recognisable formats we do not decode, so the error can name what was sent. */
function sniffUnsupported(bytes: Uint8Array): string | null {
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) return "WebP";
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) return "GIF";
  if (startsWith(bytes, ascii("BM"))) return "BMP";
  if (startsWith(bytes, [0, 0, 1, 0]) || startsWith(bytes, [0, 0, 2, 0])) return "ICO/CUR";
  if (startsWith(bytes, ascii("ftyp"), 4)) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    return brand.startsWith("avi")
      ? "AVIF"
      : brand.startsWith("hei") || brand.startsWith("mif")
      ? "HEIF"
      : "ISO-BMFF";
  }
  if (startsWith(bytes, ascii("8BPS"))) return "PSD";
  if (startsWith(bytes, ascii("qoif"))) return "QOI";
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20])) return "JPEG 2000";
  if (startsWith(bytes, [0xff, 0x4f, 0xff, 0x51])) return "JPEG 2000 codestream";
  if (startsWith(bytes, ascii("II+\0")) || startsWith(bytes, ascii("MM\0+"))) return "BigTIFF";
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart().toLowerCase();
  if (head.startsWith("<svg") || (head.startsWith("<?xml") && head.includes("<svg"))) return "SVG";
  return null;
}

function invalid(format: string, why: string): InputError {
  return new InputError(`${format} image is corrupt or truncated: ${why}`, { code: "invalid_image" });
}

function pngHeader(bytes: Uint8Array): ImageHeader {
  // IHDR must be the first chunk: length(4) "IHDR"(4) width(4) height(4) ...
  if (bytes.length < 33) {
    throw invalid("PNG", `the file is only ${bytes.length} bytes, shorter than its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== 13 || !startsWith(bytes, ascii("IHDR"), 12)) {
    throw invalid("PNG", "the first chunk is not a 13-byte IHDR");
  }
  return { format: "PNG", width: view.getUint32(16), height: view.getUint32(20) };
}

// SOF0..SOF15 carry the frame size, except C4 (DHT), C8 (JPG extension) and CC (DAC).
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function jpegHeader(bytes: Uint8Array): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 2;
  while (true) {
    // Markers may be preceded by any number of 0xFF fill bytes.
    while (pos < bytes.length && bytes[pos] === 0xff && bytes[pos + 1] === 0xff) pos++;
    if (pos + 4 > bytes.length) throw invalid("JPEG", "no frame header (SOFn) before the end of the data");
    if (bytes[pos] !== 0xff) throw invalid("JPEG", `expected a marker at byte ${pos}`);
    const marker = bytes[pos + 1];
    // Stand-alone markers without a length field (TEM, RSTn).
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) {
      throw invalid("JPEG", "no frame header (SOFn) before the image data");
    }
    const length = view.getUint16(pos + 2);
    if (length < 2) throw invalid("JPEG", `segment at byte ${pos} has length ${length}`);
    if (isStartOfFrame(marker)) {
      if (pos + 2 + 8 > bytes.length) throw invalid("JPEG", "the frame header is cut off");
      const precision = bytes[pos + 4];
      const components = bytes[pos + 9];
      const header: ImageHeader = {
        format: "JPEG",
        height: view.getUint16(pos + 5),
        width: view.getUint16(pos + 7),
      };
      if (marker !== 0xc0 && marker !== 0xc1 && marker !== 0xc2) {
        throw new InputError(
          `JPEG coding process SOF${
            marker - 0xc0
          } (lossless, hierarchical or arithmetic-coded) is not supported; ` +
            "send a baseline or progressive JPEG, PNG or TIFF",
          { code: "unsupported_image_format" },
        );
      }
      if (precision !== 8) {
        throw new InputError(`JPEG sample precision ${precision} bits is not supported; only 8-bit JPEG is`, {
          code: "unsupported_image_format",
        });
      }
      if (components !== 1 && components !== 3) {
        throw new InputError(
          `JPEG with ${components} colour components (CMYK/YCCK) is not supported; send an RGB or grayscale image`,
          { code: "unsupported_image_format" },
        );
      }
      return header;
    }
    pos += 2 + length;
  }
}

function tiffHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length < 8) throw invalid("TIFF", "the file is shorter than its 8-byte header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = bytes[0] === 0x49;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > bytes.length) {
    throw invalid("TIFF", `the first IFD offset ${ifd} is past the end of the data`);
  }
  const count = view.getUint16(ifd, little);
  if (ifd + 2 + count * 12 > bytes.length) throw invalid("TIFF", "the first IFD is cut off");
  let width = -1;
  let height = -1;
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    const tag = view.getUint16(entry, little);
    if (tag !== 256 && tag !== 257) continue;
    // ImageWidth / ImageLength are SHORT (3) or LONG (4) with one value, stored in the entry itself.
    const type = view.getUint16(entry + 2, little);
    const value = type === 3 ? view.getUint16(entry + 8, little) : view.getUint32(entry + 8, little);
    if (tag === 256) width = value;
    else height = value;
  }
  if (width < 0 || height < 0) throw invalid("TIFF", "the first IFD has no ImageWidth/ImageLength tag");
  return { format: "TIFF", width, height };
}

/** The supported format whose magic bytes `bytes` starts with, or null (nothing else is read). */
export function sniffFormat(bytes: Uint8Array): SupportedFormat | null {
  if (startsWith(bytes, PNG_SIGNATURE)) return "PNG";
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "JPEG";
  if (startsWith(bytes, ascii("II*\0")) || startsWith(bytes, ascii("MM\0*"))) return "TIFF";
  return null;
}

/**
 * Identifies the format from its magic bytes and reads the declared size from the header only.
 * Throws InputError (400) for unknown or unsupported formats and unreadable headers.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length === 0) throw new InputError("Image data is empty", { code: "invalid_image" });
  const format = sniffFormat(bytes);
  if (format === "PNG") return pngHeader(bytes);
  if (format === "JPEG") return jpegHeader(bytes);
  if (format === "TIFF") return tiffHeader(bytes);
  const known = sniffUnsupported(bytes);
  if (known) {
    throw new InputError(`Image format ${known} is not supported; send ${SUPPORTED_FORMATS_TEXT}`, {
      code: "unsupported_image_format",
    });
  }
  const first = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new InputError(
    `Image data is not a recognised image format (first bytes ${first}); send ${SUPPORTED_FORMATS_TEXT}`,
    { code: "unsupported_image_format" },
  );
}
