/**
 * The dynamic tiling's two resizes (src/image/dynamic_tiling.ts: the grid and the thumbnail, both from the
 * whole image) and the normalisation on the GPU, for a request's decoded images: each image goes up once as
 * bytes and the vision encoder's input tiles come out normalised, bit-exact with preprocessImage's pixel
 * values. On the CPU the resizes of a 12-megapixel photo took 0.15–0.6 s even on 8 worker threads of the
 * H100 host (PERF.md v24); here they are two small dispatches each.
 */
import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Grid } from "../image/dynamic_tiling.ts";
import type { RgbImage } from "../image/rgb_image.ts";
import {
  type GpuRgbImage,
  resizedTiles,
  resizeRows,
  TileResize,
  uploadRgbImage,
} from "../ops/resize_bicubic.ts";

/**
 * Where an image's tiling resizes and normalisation run (IMAGE_RESIZE): "gpu" (here; the CPU only decodes)
 * or "cpu" (preprocessImage, its resizes on IMAGE_WORKERS). The pixel values are the same.
 */
export const imageResizes = ["gpu", "cpu"] as const;
export type ImageResize = typeof imageResizes[number];

/** A decoded image and the tiling `dynamic_preprocess` chose for it (grid from its size, thumbnail or not). */
export interface DecodedImage {
  image: RgbImage;
  grid: Grid;
  /** A whole-image thumbnail follows the grid's tiles (use_thumbnail and more than one tile). */
  thumbnail: boolean;
}

/** Tiles a decoded image gives: its grid's, plus the thumbnail. */
export function decodedImageTiles({ grid, thumbnail }: DecodedImage): number {
  return grid[0] * grid[1] + (thumbnail ? 1 : 0);
}

interface Placed {
  image: GpuRgbImage;
  resize: TileResize;
  /** Index of its first tile among all the images' tiles. */
  firstTile: number;
}

/** A request's images on the GPU, ready to be written as tiles of S² into groups of the vision input. */
export class GpuTiling {
  readonly tiles: number;
  private readonly placed: Placed[] = [];

  constructor(gpu: Gpu, images: readonly DecodedImage[], private readonly S: number) {
    let firstTile = 0;
    for (const [i, d] of images.entries()) {
      const image = uploadRgbImage(gpu, `image${i}.rgb`, d.image);
      const [cols, rows] = d.grid;
      const { width, height } = d.image;
      this.placed.push({ image, resize: new TileResize(gpu, width, height, cols * S, rows * S), firstTile });
      firstTile += cols * rows;
      if (d.thumbnail) {
        this.placed.push({ image, resize: new TileResize(gpu, width, height, S, S), firstTile: firstTile++ });
      }
    }
    this.tiles = firstTile;
  }

  /** The horizontal passes of every resize (once, before any `recordTiles`). */
  recordRows(r: Recorder): void {
    for (const p of this.placed) resizeRows(r, p.image, p.resize);
  }

  /** Tiles firstTile … firstTile + n − 1 into out: [n, 3, S, S] f32; lut: normalizationTable, [3·256] f32. */
  recordTiles(r: Recorder, lut: Tensor, out: Tensor, firstTile: number): void {
    const n = out.shape[0];
    for (const p of this.placed) {
      const count = (p.resize.outWidth / this.S) * (p.resize.outHeight / this.S);
      if (p.firstTile < firstTile + n && p.firstTile + count > firstTile) {
        resizedTiles(r, p.resize, lut, out, p.firstTile - firstTile);
      }
    }
  }

  /** Frees the GPU copies (once the submitted work that reads them is done). */
  destroy(): void {
    const images = new Set(this.placed.map((p) => p.image));
    for (const p of this.placed) p.resize.destroy();
    for (const image of images) image.bytes.buffer.destroy();
  }
}
