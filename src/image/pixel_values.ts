/**
 * The model-facing image entry point: bytes → decode → dynamic tiling → ImageNet normalisation, i.e. the
 * reference `load_image(file, input_size=448, max_num)` returning `pixel_values` [tiles, 3, 448, 448].
 */
import { InputError } from "../errors.ts";
import { checkedImageHeader, decodeImage } from "./decode_image.ts";
import {
  dynamicPreprocess,
  dynamicPreprocessWith,
  type Grid,
  tileCount,
  tileGrid,
} from "./dynamic_tiling.ts";
import type { ImageWorkers } from "./image_workers.ts";
import type { RgbImage } from "./rgb_image.ts";

/** torchvision `T.Normalize` constants of `build_transform` (ImageNet), rounded to f32 like torch tensors. */
const MEAN = [0.485, 0.456, 0.406].map(Math.fround);
const STD = [0.229, 0.224, 0.225].map(Math.fround);

/**
 * `T.ToTensor()` then `T.Normalize(mean, std)` of every byte value: [3, 256] f32, channel c's value of byte v
 * at c·256 + v. A u8 has 256 values, so the whole transform is a per-channel lookup table (also the GPU's,
 * src/ops/resize_bicubic.ts).
 */
export function normalizationTable(): Float32Array {
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) {
      const x = Math.fround(v / 255);
      table[c * 256 + v] = Math.fround(Math.fround(x - MEAN[c]) / STD[c]);
    }
  }
  return table;
}

/**
 * `T.ToTensor()` then `T.Normalize(mean, std)` for square tiles, in float32 exactly like torch on CPU:
 * x = f32(u8) / 255, then (x − mean) / std, each step rounded to f32.
 * Returns pixelValues: [tiles.length, 3, size, size] f32 (channel-planar, C order).
 */
export function normalizeTiles(tiles: readonly RgbImage[]): Float32Array {
  if (tiles.length === 0) return new Float32Array(0);
  const size = tiles[0].width;
  const plane = size * size;
  const all = normalizationTable();
  const lut = [0, 1, 2].map((c) => all.subarray(c * 256, (c + 1) * 256));
  const out = new Float32Array(tiles.length * 3 * plane);
  tiles.forEach((tile, t) => {
    if (tile.width !== size || tile.height !== size) {
      throw new RangeError(`Tile ${t} is ${tile.width}×${tile.height}; expected ${size}×${size}`);
    }
    for (let c = 0; c < 3; c++) {
      const base = (t * 3 + c) * plane;
      const table = lut[c];
      for (let p = 0; p < plane; p++) out[base + p] = table[tile.data[p * 3 + c]];
    }
  });
  return out;
}

export interface PreprocessOptions {
  /** Max tiles of the grid (thumbnail not counted), 1..40 here; the model card uses 6, config.json 12. */
  maxNum: number;
  minNum?: number;
  imageSize?: number;
  useThumbnail?: boolean;
  /** Largest accepted width × height as declared by the image header (413 above it). */
  maxPixels: number;
}

export interface PreprocessedImage {
  /** pixelValues: [tiles, 3, imageSize, imageSize] f32, ImageNet-normalised. */
  pixelValues: Float32Array;
  /** Number of tiles including the thumbnail. */
  tiles: number;
  /** Chosen grid [cols, rows]. */
  grid: Grid;
}

const MAX_TILES = 40;

/** Checks the tiling options the way `preprocessImage` needs them. */
function checkOptions({ maxNum, minNum = 1, imageSize = 448 }: PreprocessOptions): void {
  if (!Number.isInteger(maxNum) || maxNum < 1 || maxNum > MAX_TILES) {
    throw new InputError(`max_num must be an integer from 1 to ${MAX_TILES}, got ${maxNum}`, {
      param: "max_num",
    });
  }
  if (!Number.isInteger(minNum) || minNum < 1 || minNum > maxNum) {
    throw new InputError(`min_num must be an integer from 1 to max_num (${maxNum}), got ${minNum}`, {
      param: "min_num",
    });
  }
  if (!Number.isInteger(imageSize) || imageSize < 1) {
    throw new RangeError(`imageSize must be a positive integer, got ${imageSize}`);
  }
}

/**
 * Image bytes → pixel values, as the reference `load_image` with `dynamic_preprocess` and `build_transform`.
 * With `workers` (src/image/image_workers.ts) a JPEG's row reconstruction and the two resizes run there;
 * the pixel values are the same.
 */
export async function preprocessImage(
  bytes: Uint8Array,
  options: PreprocessOptions,
  workers?: ImageWorkers,
): Promise<PreprocessedImage> {
  checkOptions(options);
  const { maxNum, minNum = 1, imageSize = 448, useThumbnail = true, maxPixels } = options;
  const tiling = { minNum, maxNum, imageSize, useThumbnail };
  const img = await decodeImage(bytes, { maxPixels }, workers);
  const { grid, tiles } = workers
    ? await dynamicPreprocessWith(img, tiling, (i, w, h) => workers.resize(i, w, h))
    : dynamicPreprocess(img, tiling);
  // The per-tile T.Resize((448, 448)) of build_transform is a no-op: every tile already has that size.
  return { pixelValues: normalizeTiles(tiles), tiles: tiles.length, grid };
}

/**
 * The grid and tile count `preprocessImage` will give, from the image header alone (no decoding): enough
 * to build a prompt, e.g. for a follow-up round whose image embeddings are already in a kept KV cache.
 */
export function planImageTiles(bytes: Uint8Array, options: PreprocessOptions): { tiles: number; grid: Grid } {
  checkOptions(options);
  const { maxNum, minNum = 1, imageSize = 448, useThumbnail = true, maxPixels } = options;
  const { width, height } = checkedImageHeader(bytes, maxPixels);
  const grid = tileGrid(width, height, { minNum, maxNum, imageSize });
  return { tiles: tileCount(grid, useThumbnail), grid };
}
