/**
 * Baseline TIFF → RGB8 for the common 8-bit cases, with Pillow 9.4 `convert('RGB')` semantics.
 * We decode TIFF ourselves because imagescript 1.3.1's TIFF wasm traps on every input under Deno.
 * Scope: first IFD only; strips (not tiles); PlanarConfiguration 1 (chunky); 8 bits per sample;
 * compression none / LZW / PackBits / Deflate; horizontal predictor; photometric WhiteIsZero (PIL "L;I",
 * inverted), BlackIsZero, RGB, palette (16-bit ColorMap → high byte, like PIL). Extra samples that are
 * unassociated or unspecified alpha are dropped like PIL RGBA/LA → RGB; associated (premultiplied) alpha,
 * which PIL reads as "RGBa", is refused. Orientation is ignored (PIL does not rotate either).
 */
import { InputError } from "../errors.ts";
import { newRgbImage, type RgbImage } from "./rgb_image.ts";
import { InflateError, inflateExact } from "./inflate.ts";

function corrupt(why: string): InputError {
  return new InputError(`TIFF image is corrupt or truncated: ${why}`, { code: "invalid_image" });
}

function unsupported(what: string): InputError {
  return new InputError(
    `TIFF with ${what} is not supported; send an 8-bit RGB or grayscale TIFF, PNG or JPEG`,
    {
      code: "unsupported_image_format",
    },
  );
}

const TYPE_SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 16: 8 };

/** Reads the first IFD into tag → values (integers only; that is all a baseline decoder needs). */
function readIfd(bytes: Uint8Array): Map<number, number[]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = bytes[0] === 0x49;
  const ifd = view.getUint32(4, little);
  const count = view.getUint16(ifd, little);
  const tags = new Map<number, number[]>();
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    const tag = view.getUint16(entry, little);
    const type = view.getUint16(entry + 2, little);
    const n = view.getUint32(entry + 4, little);
    const size = TYPE_SIZES[type];
    if (!size || size > 4) continue; // rationals, doubles etc. are not needed here
    const at = n * size <= 4 ? entry + 8 : view.getUint32(entry + 8, little);
    if (at + n * size > bytes.length) throw corrupt(`tag ${tag} points past the end of the data`);
    const values: number[] = [];
    for (let k = 0; k < n; k++) {
      const p = at + k * size;
      values.push(
        size === 1 ? view.getUint8(p) : size === 2 ? view.getUint16(p, little) : view.getUint32(p, little),
      );
    }
    tags.set(tag, values);
  }
  return tags;
}

/** TIFF LZW: MSB-first codes of 9..12 bits; the width grows one code early (at 511, 1023, 2047). */
function lzwDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Int32Array(4096);
  for (let i = 0; i < 256; i++) {
    suffix[i] = first[i] = i;
    length[i] = 1;
  }
  let outPos = 0;
  let next = 258;
  let width = 9;
  let bitPos = 0;
  let previous = -1;
  // Strings are stored as (prefix code, last byte), so they are written back to front.
  const emit = (code: number) => {
    for (let i = length[code] - 1, c = code; i >= 0; i--, c = prefix[c]) {
      if (outPos + i < expected) out[outPos + i] = suffix[c];
    }
    outPos += length[code];
  };
  while (outPos < expected && bitPos + width <= input.length * 8) {
    let code = 0;
    for (let i = 0; i < width; i++, bitPos++) {
      code = (code << 1) | ((input[bitPos >> 3] >> (7 - (bitPos & 7))) & 1);
    }
    if (code === 257) break; // EndOfInformation
    if (code === 256) { // ClearCode
      next = 258;
      width = 9;
      previous = -1;
      continue;
    }
    if (previous >= 0) {
      if (code > next) throw corrupt(`LZW code ${code} is not yet defined`);
      if (next < 4096) {
        // code === next is the "KwKwK" case: the new string is previous + its own first byte.
        prefix[next] = previous;
        suffix[next] = code < next ? first[code] : first[previous];
        first[next] = first[previous];
        length[next] = length[previous] + 1;
        next++;
      }
    } else if (code > 255) {
      throw corrupt("LZW data does not start with a literal after a clear code");
    }
    emit(code);
    previous = code;
    if (next >= (1 << width) - 1 && width < 12) width++;
  }
  if (outPos < expected) throw corrupt(`LZW data ends after ${outPos} of ${expected} bytes`);
  return out;
}

function packBitsDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let i = 0;
  let o = 0;
  while (o < expected && i < input.length) {
    const n = (input[i++] << 24) >> 24; // signed byte
    if (n >= 0) {
      const run = Math.min(n + 1, expected - o, input.length - i);
      out.set(input.subarray(i, i + run), o);
      i += n + 1;
      o += run;
    } else if (n !== -128) {
      const run = Math.min(1 - n, expected - o);
      out.fill(input[i++], o, o + run);
      o += run;
    }
  }
  if (o < expected) throw corrupt(`PackBits data ends after ${o} of ${expected} bytes`);
  return out;
}

/** A Deflate strip's bytes, or its InputError. */
async function inflate(input: Uint8Array, expected: number): Promise<Uint8Array> {
  try {
    return await inflateExact(input, expected);
  } catch (err) {
    if (err instanceof InflateError) throw corrupt(`Deflate data ${err.message}`);
    throw err;
  }
}

function tag(tags: Map<number, number[]>, id: number, fallback?: number[]): number[] {
  const v = tags.get(id) ?? fallback;
  if (!v) throw corrupt(`required tag ${id} is missing`);
  return v;
}

/** Decodes a TIFF whose header was already validated (size limits included) by the caller. */
export async function decodeTiff(bytes: Uint8Array, width: number, height: number): Promise<RgbImage> {
  const tags = readIfd(bytes);
  const samples = tag(tags, 277, [1])[0];
  const bits = tag(tags, 258, [1]);
  const compression = tag(tags, 259, [1])[0];
  const photometric = tag(tags, 262)[0];
  const planar = tag(tags, 284, [1])[0];
  const predictor = tag(tags, 317, [1])[0];
  const extra = tags.get(338) ?? [];
  if (tags.has(322) || tags.has(324)) throw unsupported("tiled layout");
  if (bits.some((b) => b !== 8)) throw unsupported(`${bits.join("/")} bits per sample`);
  if (planar !== 1 && samples > 1) throw unsupported("separate colour planes (PlanarConfiguration 2)");
  if (![1, 5, 8, 32946, 32773].includes(compression)) throw unsupported(`compression ${compression}`);
  if (predictor !== 1 && predictor !== 2) throw unsupported(`predictor ${predictor}`);
  if (extra.includes(1)) throw unsupported("premultiplied (associated) alpha");
  const colour = photometric === 2 ? 3 : 1;
  if (![0, 1, 2, 3].includes(photometric)) throw unsupported(`photometric interpretation ${photometric}`);
  if (samples < colour) throw corrupt(`${samples} samples per pixel for photometric ${photometric}`);

  const rowsPerStrip = Math.min(tag(tags, 278, [height])[0], height);
  const offsets = tag(tags, 273);
  const counts = tag(tags, 279);
  const rowBytes = width * samples;
  const strips = Math.ceil(height / rowsPerStrip);
  if (offsets.length < strips || counts.length < strips) {
    throw corrupt(`${offsets.length} strips for ${strips}`);
  }
  // pixels: [height, width, samples] u8
  const pixels = new Uint8Array(height * rowBytes);
  for (let s = 0; s < strips; s++) {
    const rows = Math.min(rowsPerStrip, height - s * rowsPerStrip);
    const expected = rows * rowBytes;
    if (offsets[s] + counts[s] > bytes.length) throw corrupt(`strip ${s} runs past the end of the data`);
    const data = bytes.subarray(offsets[s], offsets[s] + counts[s]);
    let strip: Uint8Array;
    if (compression === 1) {
      if (data.length < expected) throw corrupt(`strip ${s} holds ${data.length} of ${expected} bytes`);
      strip = data.subarray(0, expected);
    } else if (compression === 5) strip = lzwDecode(data, expected);
    else if (compression === 32773) strip = packBitsDecode(data, expected);
    else strip = await inflate(data, expected);
    pixels.set(strip, s * rowsPerStrip * rowBytes);
  }
  if (predictor === 2) {
    // Horizontal differencing per sample, modulo 256.
    for (let y = 0; y < height; y++) {
      const row = y * rowBytes;
      for (let i = samples; i < rowBytes; i++) {
        pixels[row + i] = (pixels[row + i] + pixels[row + i - samples]) & 0xff;
      }
    }
  }

  const img = newRgbImage(width, height);
  const out = img.data;
  const n = width * height;
  if (photometric === 2) {
    for (let i = 0; i < n; i++) {
      out[i * 3] = pixels[i * samples];
      out[i * 3 + 1] = pixels[i * samples + 1];
      out[i * 3 + 2] = pixels[i * samples + 2];
    }
  } else if (photometric === 3) {
    const map = tag(tags, 320);
    if (map.length < 3 * 256) throw corrupt(`ColorMap has ${map.length} entries, expected 768`);
    // PIL keeps the high byte of the 16-bit ColorMap entries.
    for (let i = 0; i < n; i++) {
      const index = pixels[i * samples];
      out[i * 3] = map[index] >> 8;
      out[i * 3 + 1] = map[256 + index] >> 8;
      out[i * 3 + 2] = map[512 + index] >> 8;
    }
  } else {
    // WhiteIsZero is PIL rawmode "L;I": stored values are inverted.
    const invert = photometric === 0 ? 255 : 0;
    for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = pixels[i * samples] ^ invert;
  }
  return img;
}
