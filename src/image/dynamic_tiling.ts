/**
 * InternVL dynamic tiling: pick a cols×rows grid whose aspect ratio is closest to the image's, resize the
 * image to (448·cols)×(448·rows) with Pillow BICUBIC, cut it into 448² tiles row-major, and append a
 * 448² thumbnail of the whole image when there is more than one tile.
 * Mirrors `dynamic_preprocess` / `find_closest_aspect_ratio` of the model card (REFERENCE §5,
 * OpenGVLab/InternVL 4d48dce internvl_chat), including its tie rules.
 */
import { bicubicResize } from "./bicubic_resize.ts";
import { cpythonSetOrder } from "./cpython_set_order.ts";
import { cropRgbImage, type RgbImage } from "./rgb_image.ts";

/** A grid as [cols, rows] = the reference's (i, j) = (width blocks, height blocks). */
export type Grid = [cols: number, rows: number];

/**
 * Candidate grids in the exact order the reference iterates them:
 * `sorted(set((i, j) for n in range(min, max+1) for i in 1..n for j in 1..n if min <= i*j <= max),
 * key=i*j)`. Grids with equal i·j keep CPython's set iteration order (the sort is stable).
 */
export function targetRatios(minNum: number, maxNum: number): Grid[] {
  const generated: [number, number][] = [];
  for (let n = minNum; n <= maxNum; n++) {
    for (let i = 1; i <= n; i++) {
      for (let j = 1; j <= n; j++) {
        if (i * j <= maxNum && i * j >= minNum) generated.push([i, j]);
      }
    }
  }
  // Array.prototype.sort is stable, like Python's sorted.
  return cpythonSetOrder(generated).sort((a, b) => a[0] * a[1] - b[0] * b[1]);
}

/**
 * The reference `find_closest_aspect_ratio`: the first candidate with a strictly smaller |w/h − i/j| wins;
 * on an exact tie a later candidate replaces the best only if the image area exceeds half the candidate
 * grid's pixel area (w·h > 0.5·size²·i·j). Starts from (1, 1) with an infinite difference.
 */
export function findClosestAspectRatio(
  aspectRatio: number,
  ratios: readonly Grid[],
  width: number,
  height: number,
  imageSize: number,
): Grid {
  let bestDiff = Infinity;
  let best: Grid = [1, 1];
  const area = width * height;
  for (const ratio of ratios) {
    const diff = Math.abs(aspectRatio - ratio[0] / ratio[1]);
    if (diff < bestDiff) {
      bestDiff = diff;
      best = ratio;
    } else if (diff === bestDiff && area > 0.5 * imageSize * imageSize * ratio[0] * ratio[1]) {
      best = ratio;
    }
  }
  return [best[0], best[1]];
}

export interface TilingOptions {
  minNum: number;
  maxNum: number;
  /** Tile side in pixels (448 for InternVL-Chat-V1.5). */
  imageSize: number;
  /** Append a whole-image thumbnail after the tiles when there is more than one tile. */
  useThumbnail: boolean;
}

export interface TilingResult {
  grid: Grid;
  /** tiles: cols·rows crops in row-major order, then the thumbnail if any; each imageSize² RGB. */
  tiles: RgbImage[];
}

/** The grid `dynamic_preprocess` picks for a width × height image (it depends on the size alone). */
export function tileGrid(
  width: number,
  height: number,
  { minNum, maxNum, imageSize }: Omit<TilingOptions, "useThumbnail">,
): Grid {
  return findClosestAspectRatio(width / height, targetRatios(minNum, maxNum), width, height, imageSize);
}

/** Tiles `dynamic_preprocess` makes for a grid: cols·rows, plus the thumbnail when there is more than one. */
export function tileCount(grid: Grid, useThumbnail: boolean): number {
  return grid[0] * grid[1] + (hasThumbnail(grid, useThumbnail) ? 1 : 0);
}

/** The reference `dynamic_preprocess(image, min_num, max_num, image_size, use_thumbnail)`. */
export function dynamicPreprocess(img: RgbImage, options: TilingOptions): TilingResult {
  const grid = tileGrid(img.width, img.height, options);
  const [cols, rows] = grid, S = options.imageSize;
  const resized = bicubicResize(img, S * cols, S * rows);
  const thumbnail = hasThumbnail(grid, options.useThumbnail) ? bicubicResize(img, S, S) : null;
  return { grid, tiles: cutTiles(resized, grid, S, thumbnail) };
}

/** Resizes like `bicubicResize`, possibly elsewhere (src/image/image_workers.ts). */
export type Resizer = (img: RgbImage, width: number, height: number) => Promise<RgbImage>;

/** `dynamicPreprocess` with the grid resize and the thumbnail resize started together on `resize`. */
export async function dynamicPreprocessWith(
  img: RgbImage,
  options: TilingOptions,
  resize: Resizer,
): Promise<TilingResult> {
  const grid = tileGrid(img.width, img.height, options);
  const [cols, rows] = grid, S = options.imageSize;
  const [resized, thumbnail] = await Promise.all([
    resize(img, S * cols, S * rows),
    hasThumbnail(grid, options.useThumbnail) ? resize(img, S, S) : null,
  ]);
  return { grid, tiles: cutTiles(resized, grid, S, thumbnail) };
}

/** Whether `dynamic_preprocess` appends the thumbnail: use_thumbnail and more than one tile. */
export function hasThumbnail([cols, rows]: Grid, useThumbnail: boolean): boolean {
  return useThumbnail && cols * rows !== 1;
}

/** The grid's tiles of the resized image, row by row, then the thumbnail if any. */
function cutTiles(resized: RgbImage, [cols, rows]: Grid, S: number, thumbnail: RgbImage | null): RgbImage[] {
  const tiles: RgbImage[] = [];
  for (let i = 0; i < cols * rows; i++) {
    const left = (i % cols) * S;
    const top = Math.floor(i / cols) * S;
    tiles.push(cropRgbImage(resized, left, top, left + S, top + S));
  }
  if (thumbnail) tiles.push(thumbnail);
  return tiles;
}
