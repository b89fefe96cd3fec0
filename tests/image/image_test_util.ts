/**
 * Shared helpers for the image tests: fixture access, sha256, and tiny PNG/TIFF writers for building
 * inputs whose exact RGB we know (spec-level encoders, independent of the decoder under test).
 */
export const GOLDENS = new URL("../fixtures/tiny-internvl/goldens/", import.meta.url);

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

/** A little-endian, uncompressed, single-strip 8-bit TIFF (baseline gray, RGB or RGBA). */
export function encodeTiff(
  width: number,
  height: number,
  channels: 1 | 3 | 4,
  pixels: Uint8Array,
): Uint8Array {
  const entries: [tag: number, type: number, count: number, value: number][] = [];
  const extra: Uint8Array[] = [];
  const headerAndIfd = 8 + 2 + 12 * 11 + 4;
  let cursor = headerAndIfd;
  let bitsValue = 8;
  if (channels > 1) {
    bitsValue = cursor; // BitsPerSample array lives after the IFD
    const bits = new Uint8Array(channels * 2);
    for (let i = 0; i < channels; i++) bits[2 * i] = 8;
    extra.push(bits);
    cursor += bits.length;
  }
  const stripOffset = cursor;
  entries.push([256, 4, 1, width], [257, 4, 1, height], [258, 3, channels, bitsValue], [259, 3, 1, 1]);
  entries.push([262, 3, 1, channels === 1 ? 1 : 2], [273, 4, 1, stripOffset], [277, 3, 1, channels]);
  entries.push([278, 4, 1, height], [279, 4, 1, pixels.length], [284, 3, 1, 1]);
  // ExtraSamples = 2 (unassociated alpha) for RGBA; a harmless SampleFormat=uint otherwise.
  entries.push(channels === 4 ? [338, 3, 1, 2] : [339, 3, 1, 1]);
  entries.sort((a, b) => a[0] - b[0]);
  const head = new Uint8Array(headerAndIfd);
  const view = new DataView(head.buffer);
  head.set([0x49, 0x49, 42, 0]);
  view.setUint32(4, 8, true);
  view.setUint16(8, entries.length, true);
  entries.forEach(([tag, type, count, value], i) => {
    const at = 10 + i * 12;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, type, true);
    view.setUint32(at + 4, count, true);
    if (type === 3 && count === 1) view.setUint16(at + 8, value, true);
    else view.setUint32(at + 8, value, true);
  });
  view.setUint32(10 + entries.length * 12, 0, true);
  return concat([head, ...extra, pixels]);
}
