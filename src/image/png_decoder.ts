/**
 * PNG → RGB8 with the exact pixel semantics of Pillow 9.4 `Image.open(f).convert('RGB')`.
 * We decode PNG ourselves (inflate + unfilter) rather than through a library so that every colour
 * type maps to RGB the way PIL's PNG modes and converters do, in particular:
 *  - RGBA / LA: alpha is dropped, the stored colour of transparent pixels is kept (no compositing);
 *  - 1/2/4-bit gray scale up (×255, ×85, ×17) like PIL's "1", "L;2", "L;4" unpackers;
 *  - 16-bit RGB(A)/LA keep the high byte ("RGB;16B", "RGBA;16B", "LA;16B");
 *  - 16-bit gray opens as PIL mode "I" whose RGB conversion CLIPS to 0..255 (it does not rescale);
 *  - palette indices past the PLTE length read PIL's default gray ramp (i, i, i);
 *  - tRNS is ignored (convert('RGB') never applies it).
 */
import { InputError } from "../errors.ts";
import { newRgbImage, type RgbImage } from "./rgb_image.ts";
import { InflateError, inflateExact } from "./inflate.ts";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function corrupt(why: string): InputError {
  return new InputError(`PNG image is corrupt or truncated: ${why}`, { code: "invalid_image" });
}

// Allowed bit depths per colour type (PNG spec table 11.1).
const ALLOWED_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

// Adam7 passes: [x0, y0, dx, dy].
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  palette: Uint8Array | null;
  idat: Uint8Array;
}

function readChunks(bytes: Uint8Array): PngInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idatParts: Uint8Array[] = [];
  let info: Omit<PngInfo, "idat" | "palette"> | null = null;
  let palette: Uint8Array | null = null;
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 8 > bytes.length) throw corrupt(`chunk header at byte ${pos} is cut off`);
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (pos + 12 + length > bytes.length) throw corrupt(`chunk ${type} at byte ${pos} is cut off`);
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    // Pillow verifies the CRC of every chunk it reads before the image data.
    if (
      idatParts.length === 0 &&
      crc32(bytes.subarray(pos + 4, pos + 8 + length)) !== view.getUint32(pos + 8 + length)
    ) {
      throw corrupt(`bad CRC in chunk ${type}`);
    }
    if (type === "IHDR") {
      info = {
        width: view.getUint32(pos + 8),
        height: view.getUint32(pos + 12),
        bitDepth: data[8],
        colorType: data[9],
        interlaced: data[12] === 1,
      };
      if (data[10] !== 0 || data[11] !== 0 || data[12] > 1) {
        throw corrupt(`unknown compression/filter/interlace method ${data[10]}/${data[11]}/${data[12]}`);
      }
      if (!(ALLOWED_DEPTHS[info.colorType] ?? []).includes(info.bitDepth)) {
        throw corrupt(
          `colour type ${info.colorType} with bit depth ${info.bitDepth} is not a valid combination`,
        );
      }
    } else if (type === "PLTE") {
      if (length % 3 !== 0 || length === 0 || length > 768) throw corrupt(`PLTE length ${length}`);
      palette = data;
    } else if (type === "IDAT") {
      idatParts.push(data);
    } else if (type === "IEND") {
      break;
    }
    pos += 12 + length;
  }
  if (!info) throw corrupt("no IHDR chunk");
  if (idatParts.length === 0) throw corrupt("no image data (IDAT)");
  if (info.colorType === 3 && !palette) throw corrupt("palette image without a PLTE chunk");
  const total = idatParts.reduce((n, p) => n + p.length, 0);
  const idat = new Uint8Array(total);
  let offset = 0;
  for (const part of idatParts) {
    idat.set(part, offset);
    offset += part.length;
  }
  return { ...info, palette, idat };
}

/** Inflates the zlib stream, keeping only the bytes the image needs (Pillow ignores any excess). */
async function inflate(idat: Uint8Array, expected: number): Promise<Uint8Array> {
  try {
    return await inflateExact(idat, expected);
  } catch (err) {
    if (err instanceof InflateError) throw corrupt(`image data ${err.message}`);
    throw err;
  }
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Reverses the per-scanline filters in place; rows: [rows, 1 + stride] u8 (filter byte first). */
function unfilter(raw: Uint8Array, offset: number, rows: number, stride: number, bpp: number): void {
  for (let y = 0; y < rows; y++) {
    const row = offset + y * (stride + 1);
    const filter = raw[row];
    const cur = row + 1;
    const prev = cur - (stride + 1); // only read when y > 0
    switch (filter) {
      case 0:
        break;
      case 1:
        for (let i = bpp; i < stride; i++) raw[cur + i] = (raw[cur + i] + raw[cur + i - bpp]) & 0xff;
        break;
      case 2:
        if (y > 0) { for (let i = 0; i < stride; i++) raw[cur + i] = (raw[cur + i] + raw[prev + i]) & 0xff; }
        break;
      case 3:
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? raw[cur + i - bpp] : 0;
          const up = y > 0 ? raw[prev + i] : 0;
          raw[cur + i] = (raw[cur + i] + ((left + up) >> 1)) & 0xff;
        }
        break;
      case 4:
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? raw[cur + i - bpp] : 0;
          const up = y > 0 ? raw[prev + i] : 0;
          const upLeft = i >= bpp && y > 0 ? raw[prev + i - bpp] : 0;
          raw[cur + i] = (raw[cur + i] + paeth(left, up, upLeft)) & 0xff;
        }
        break;
      default:
        throw corrupt(`unknown filter type ${filter} on scanline ${y}`);
    }
  }
}

/** Builds the sample → RGB mapping for one pixel at `(row, x)` of an unfiltered scanline. */
function pixelReader(
  png: PngInfo,
): (raw: Uint8Array, row: number, x: number, out: Uint8Array, o: number) => void {
  const { bitDepth: depth, colorType } = png;
  if (colorType === 3) {
    const palette = png.palette!;
    const entries = palette.length / 3;
    return (raw, row, x, out, o) => {
      const perByte = 8 / depth;
      const index = depth === 8
        ? raw[row + x]
        : (raw[row + Math.floor(x / perByte)] >> (8 - depth * (x % perByte + 1))) & ((1 << depth) - 1);
      if (index < entries) {
        out[o] = palette[index * 3];
        out[o + 1] = palette[index * 3 + 1];
        out[o + 2] = palette[index * 3 + 2];
      } else {
        // PIL initialises palettes as a gray ramp and only overwrites the PLTE entries.
        out[o] = out[o + 1] = out[o + 2] = index;
      }
    };
  }
  if (colorType === 0) {
    if (depth === 16) {
      // PIL quirk, reproduced on purpose: 16-bit gray opens as mode "I" and I→RGB clips, not rescales.
      return (raw, row, x, out, o) => {
        const v = (raw[row + 2 * x] << 8) | raw[row + 2 * x + 1];
        out[o] = out[o + 1] = out[o + 2] = v > 255 ? 255 : v;
      };
    }
    const perByte = 8 / depth;
    const scale = 255 / ((1 << depth) - 1); // 1-bit: 255, 2-bit: 85, 4-bit: 17, 8-bit: 1
    return (raw, row, x, out, o) => {
      const v = depth === 8
        ? raw[row + x]
        : (raw[row + Math.floor(x / perByte)] >> (8 - depth * (x % perByte + 1))) & ((1 << depth) - 1);
      out[o] = out[o + 1] = out[o + 2] = v * scale;
    };
  }
  // Gray+alpha, RGB, RGBA: take the (high byte of the) colour samples, drop alpha.
  const bytesPerSample = depth / 8;
  const pixelBytes = CHANNELS[colorType] * bytesPerSample;
  if (colorType === 4) {
    return (raw, row, x, out, o) => {
      out[o] = out[o + 1] = out[o + 2] = raw[row + x * pixelBytes];
    };
  }
  return (raw, row, x, out, o) => {
    const p = row + x * pixelBytes;
    out[o] = raw[p];
    out[o + 1] = raw[p + bytesPerSample];
    out[o + 2] = raw[p + 2 * bytesPerSample];
  };
}

/** Decodes a PNG whose header was already validated (size limits included) by the caller. */
export async function decodePng(bytes: Uint8Array): Promise<RgbImage> {
  const png = readChunks(bytes);
  const { width, height, bitDepth, colorType } = png;
  const bitsPerPixel = CHANNELS[colorType] * bitDepth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = png.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  // Per pass: [x0, y0, dx, dy, passWidth, passHeight, stride].
  const layout = passes.map(([x0, y0, dx, dy]) => {
    const w = Math.ceil(Math.max(0, width - x0) / dx);
    const h = Math.ceil(Math.max(0, height - y0) / dy);
    return { x0, y0, dx, dy, w, h, stride: Math.ceil((w * bitsPerPixel) / 8) };
  }).filter((p) => p.w > 0 && p.h > 0);
  const expected = layout.reduce((n, p) => n + p.h * (p.stride + 1), 0);
  const raw = await inflate(png.idat, expected);

  const img = newRgbImage(width, height);
  const read = pixelReader(png);
  let offset = 0;
  for (const p of layout) {
    unfilter(raw, offset, p.h, p.stride, bpp);
    for (let y = 0; y < p.h; y++) {
      const row = offset + y * (p.stride + 1) + 1;
      const outRow = (p.y0 + y * p.dy) * width;
      for (let x = 0; x < p.w; x++) read(raw, row, x, img.data, (outRow + p.x0 + x * p.dx) * 3);
    }
    offset += p.h * (p.stride + 1);
  }
  return img;
}
