/**
 * Shared helpers for the image tests: fixture access, sha256, and tiny PNG/TIFF writers for building
 * inputs whose exact RGB we know (spec-level encoders, independent of the decoder under test).
 */
import { newRgbImage, type RgbImage } from "../../src/image/rgb_image.ts";

export const GOLDENS = new URL("../fixtures/tiny-internvl/goldens/", import.meta.url);

/** A width × height image of fixed-seed pseudo-random bytes. */
export function patterned(width: number, height: number, seed: number): RgbImage {
  const img = newRgbImage(width, height);
  let s = seed >>> 0;
  for (let i = 0; i < img.data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0; // fixed-seed LCG
    img.data[i] = s >>> 24;
  }
  return img;
}

export interface ManifestImage {
  orig_size: [number, number];
  target_ratios: [number, number][];
  grid: [number, number];
  resized_size: [number, number];
  num_tiles: number;
  thumbnail: boolean;
  file: string;
  format: string;
  max_num: number;
  min_num: number;
  use_thumbnail: boolean;
  decoded_rgb_sha256: string;
  decoded_rgb_png?: string;
  resized_rgb_sha256: string;
  resized_rgb_png?: string;
  pixel_values_shape: number[];
  pixel_values_f32_sha256: string;
  tile_channel_mean: number[][];
  tile_channel_std: number[][];
  sampled_patches: { patch_grid_positions_row_col: [number, number][]; file: string; shape: number[] };
  pixel_values_f16?: { file: string; shape: number[] };
}

export async function manifestImages(): Promise<Record<string, ManifestImage>> {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", GOLDENS)));
  return manifest.images;
}

export function readGolden(path: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(path, GOLDENS));
}

export async function sha256Hex(bytes: ArrayBufferView): Promise<string> {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice();
  const digest = await crypto.subtle.digest("SHA-256", view);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- PNG writer -------------------------------------------------------------------------------------

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export async function zlibCompress(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function ihdr(
  width: number,
  height: number,
  bitDepth: number,
  colorType: number,
  interlace = 0,
): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([bitDepth, colorType, 0, 0, interlace], 8);
  return pngChunk("IHDR", data);
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export interface PngSpec {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  /** samples: [height, width, channels] raw sample values (indices for palette images). */
  samples: number[];
  palette?: number[];
  interlace?: boolean;
  /** Filter type used for every scanline (encoded with the "raw byte minus predictor" rule). */
  filter?: number;
}

function packScanline(samples: number[], bitDepth: number): Uint8Array {
  if (bitDepth === 16) {
    const out = new Uint8Array(samples.length * 2);
    samples.forEach((s, i) => {
      out[2 * i] = s >> 8;
      out[2 * i + 1] = s & 0xff;
    });
    return out;
  }
  const out = new Uint8Array(Math.ceil((samples.length * bitDepth) / 8));
  samples.forEach((s, i) => {
    const bit = i * bitDepth;
    out[bit >> 3] |= s << (8 - bitDepth - (bit & 7));
  });
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function filterRows(rows: Uint8Array[], bpp: number, filter: number): Uint8Array {
  const parts: Uint8Array[] = [];
  rows.forEach((row, y) => {
    const prev = y > 0 ? rows[y - 1] : new Uint8Array(row.length);
    const out = new Uint8Array(row.length + 1);
    out[0] = filter;
    for (let i = 0; i < row.length; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      out[i + 1] = (row[i] - pred) & 0xff;
    }
    parts.push(out);
  });
  return concat(parts);
}

/** Encodes a PNG from raw samples (optionally Adam7-interlaced and with a chosen filter type). */
export async function encodePng(spec: PngSpec): Promise<Uint8Array> {
  const { width, height, bitDepth, colorType, samples } = spec;
  const ch = CHANNELS[colorType];
  const bpp = Math.max(1, (ch * bitDepth) >> 3);
  const passes = spec.interlace
    ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
    : [[0, 0, 1, 1]];
  const parts: Uint8Array[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const rows: Uint8Array[] = [];
    for (let y = y0; y < height; y += dy) {
      const line: number[] = [];
      for (let x = x0; x < width; x += dx) {
        for (let c = 0; c < ch; c++) line.push(samples[(y * width + x) * ch + c]);
      }
      if (line.length > 0) rows.push(packScanline(line, bitDepth));
    }
    if (rows.length > 0) parts.push(filterRows(rows, bpp, spec.filter ?? 0));
  }
  const chunks = [PNG_SIGNATURE, ihdr(width, height, bitDepth, colorType, spec.interlace ? 1 : 0)];
  if (spec.palette) chunks.push(pngChunk("PLTE", new Uint8Array(spec.palette)));
  chunks.push(pngChunk("IDAT", await zlibCompress(concat(parts))));
  chunks.push(pngChunk("IEND", new Uint8Array(0)));
  return concat(chunks);
}

// ---- TIFF writer ------------------------------------------------------------------------------------

/** TIFF LZW encoder (MSB-first, early change) — the inverse of what tiff_decoder.ts reads. */
export function lzwEncode(data: Uint8Array): Uint8Array {
  const bytes: number[] = [];
  let acc = 0, nbits = 0, width = 9;
  const put = (code: number) => {
    acc = (acc << width) | code;
    nbits += width;
    while (nbits >= 8) {
      bytes.push((acc >> (nbits - 8)) & 0xff);
      nbits -= 8;
    }
    acc &= (1 << nbits) - 1;
  };
  let dict = new Map<string, number>();
  let next = 258;
  put(256);
  let w = "";
  for (const byte of data) {
    const wc = w === "" ? String(byte) : `${w},${byte}`;
    if (w === "" || dict.has(wc)) {
      w = wc;
      continue;
    }
    put(w.includes(",") ? dict.get(w)! : Number(w));
    dict.set(wc, next++);
    // The encoder is one table entry ahead of the decoder, so it widens at 512/1024/2048 (decoder: one early).
    if (next > (1 << width) - 1 && width < 12) width++;
    if (next >= 4094) { // table nearly full: clear and restart
      put(256);
      dict = new Map();
      next = 258;
      width = 9;
    }
    w = String(byte);
  }
  if (w !== "") put(w.includes(",") ? dict.get(w)! : Number(w));
  put(257);
  if (nbits > 0) bytes.push((acc << (8 - nbits)) & 0xff);
  return new Uint8Array(bytes);
}

/** PackBits encoder: runs of ≥ 3 equal bytes become repeat packets, the rest literal packets. */
export function packBitsEncode(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    let run = 1;
    while (i + run < data.length && data[i + run] === data[i] && run < 128) run++;
    if (run >= 3) {
      out.push(257 - run, data[i]);
      i += run;
      continue;
    }
    const start = i;
    while (i < data.length && i - start < 128 && !(data[i] === data[i + 1] && data[i] === data[i + 2])) i++;
    out.push(i - start - 1, ...data.subarray(start, i));
  }
  return new Uint8Array(out);
}

export interface TiffSpec {
  width: number;
  height: number;
  samples: 1 | 2 | 3 | 4;
  /** pixels: [height, width, samples] u8 */
  pixels: Uint8Array;
  /** 0 WhiteIsZero, 1 BlackIsZero, 2 RGB, 3 palette (default: 1 for 1–2 samples, 2 otherwise). */
  photometric?: number;
  /** 1 none, 5 LZW, 8 Deflate, 32773 PackBits. */
  compression?: 1 | 5 | 8 | 32773;
  predictor?: 1 | 2;
  rowsPerStrip?: number;
  /** ExtraSamples value for the last sample when samples is 2 or 4 (default 2 = unassociated alpha). */
  extraSamples?: number;
  colorMap?: number[];
  bigEndian?: boolean;
}

/** A single-IFD, 8-bit, chunky, striped TIFF. */
export async function encodeTiff(spec: TiffSpec): Promise<Uint8Array> {
  const { width, height, samples, pixels } = spec;
  const compression = spec.compression ?? 1;
  const rowsPerStrip = spec.rowsPerStrip ?? height;
  const rowBytes = width * samples;
  const strips: Uint8Array[] = [];
  for (let y = 0; y < height; y += rowsPerStrip) {
    const raw = pixels.slice(y * rowBytes, Math.min(height, y + rowsPerStrip) * rowBytes);
    if (spec.predictor === 2) {
      for (let r = raw.length / rowBytes - 1; r >= 0; r--) {
        for (let i = rowBytes - 1; i >= samples; i--) {
          raw[r * rowBytes + i] = (raw[r * rowBytes + i] - raw[r * rowBytes + i - samples]) & 0xff;
        }
      }
    }
    strips.push(
      compression === 5
        ? lzwEncode(raw)
        : compression === 8
        ? await zlibCompress(raw)
        : compression === 32773
        ? packBitsEncode(raw)
        : raw,
    );
  }
  const le = !spec.bigEndian;
  // Layout: header, IFD, then out-of-line values, then strips.
  const entries: { tag: number; type: number; values: number[] }[] = [
    { tag: 256, type: 4, values: [width] },
    { tag: 257, type: 4, values: [height] },
    { tag: 258, type: 3, values: new Array(samples).fill(8) },
    { tag: 259, type: 3, values: [compression] },
    { tag: 262, type: 3, values: [spec.photometric ?? (samples >= 3 ? 2 : 1)] },
    { tag: 273, type: 4, values: strips.map(() => 0) },
    { tag: 277, type: 3, values: [samples] },
    { tag: 278, type: 4, values: [rowsPerStrip] },
    { tag: 279, type: 4, values: strips.map((s) => s.length) },
    { tag: 284, type: 3, values: [1] },
  ];
  if (spec.predictor) entries.push({ tag: 317, type: 3, values: [spec.predictor] });
  if (spec.colorMap) entries.push({ tag: 320, type: 3, values: spec.colorMap });
  if (samples === 2 || samples === 4) entries.push({ tag: 338, type: 3, values: [spec.extraSamples ?? 2] });
  entries.sort((a, b) => a.tag - b.tag);
  const ifdSize = 2 + entries.length * 12 + 4;
  let extraAt = 8 + ifdSize;
  const outOfLine = entries.map((e) => {
    const size = e.values.length * (e.type === 3 ? 2 : 4);
    if (size <= 4) return -1;
    const at = extraAt;
    extraAt += size;
    return at;
  });
  let stripAt = extraAt;
  const stripOffsets = strips.map((s) => {
    const at = stripAt;
    stripAt += s.length;
    return at;
  });
  entries.find((e) => e.tag === 273)!.values = stripOffsets;
  const out = new Uint8Array(stripAt);
  const view = new DataView(out.buffer);
  out.set(le ? [0x49, 0x49, 42, 0] : [0x4d, 0x4d, 0, 42]);
  view.setUint32(4, 8, le);
  view.setUint16(8, entries.length, le);
  entries.forEach((e, i) => {
    const at = 10 + i * 12;
    view.setUint16(at, e.tag, le);
    view.setUint16(at + 2, e.type, le);
    view.setUint32(at + 4, e.values.length, le);
    const base = outOfLine[i] >= 0 ? outOfLine[i] : at + 8;
    if (outOfLine[i] >= 0) view.setUint32(at + 8, base, le);
    e.values.forEach((v, k) => {
      if (e.type === 3) view.setUint16(base + 2 * k, v, le);
      else view.setUint32(base + 4 * k, v, le);
    });
  });
  strips.forEach((s, i) => out.set(s, stripOffsets[i]));
  return out;
}
