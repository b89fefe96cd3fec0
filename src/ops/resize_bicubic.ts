import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { expectTensor, type Tensor } from "../gpu/tensor.ts";
import { axisCoefficients, checkResizeTarget } from "../image/bicubic_resize.ts";
import type { RgbImage } from "../image/rgb_image.ts";
import { flatGrid } from "./grid.ts";

/** An RGB8 image on the GPU: bytes [height, width, 3] u8 packed 4 a word (little-endian), zero-padded. */
export interface GpuRgbImage {
  width: number;
  height: number;
  bytes: Tensor; // [ceil(width·height·3 / 4)] u32
}

export function uploadRgbImage(gpu: Gpu, label: string, img: RgbImage): GpuRgbImage {
  const words = Math.ceil(img.data.length / 4);
  return { width: img.width, height: img.height, bytes: gpu.uploadTensor(label, "u32", [words], img.data) };
}

/** Pillow's taps for one axis as kernels/resize_bicubic.wgsl reads them: [first | count | weights] i32. */
interface AxisTaps {
  ksize: number;
  taps: Tensor; // [2·out + out·ksize] i32
}

function uploadAxisTaps(gpu: Gpu, label: string, inSize: number, outSize: number): AxisTaps {
  const { ksize, first, count, weights } = axisCoefficients(inSize, outSize);
  const packed = new Int32Array(2 * outSize + weights.length);
  packed.set(first, 0);
  packed.set(count, outSize);
  packed.set(weights, 2 * outSize);
  return { ksize, taps: gpu.uploadTensor(label, "i32", [packed.length], packed) };
}

/**
 * What one resize of a width × height image to outWidth × outHeight needs on the GPU besides the image:
 * both axes' taps and the horizontal pass's output (between: [height, outWidth, 3] u32 samples).
 */
export class TileResize {
  readonly horizontal: AxisTaps;
  readonly vertical: AxisTaps;
  readonly between: Tensor;

  constructor(
    gpu: Gpu,
    readonly width: number,
    readonly height: number,
    readonly outWidth: number,
    readonly outHeight: number,
  ) {
    checkResizeTarget(outWidth, outHeight);
    this.horizontal = uploadAxisTaps(gpu, "resize.taps_x", width, outWidth);
    this.vertical = uploadAxisTaps(gpu, "resize.taps_y", height, outHeight);
    this.between = gpu.createTensor("resize.between", "u32", [height, outWidth, 3]);
  }

  destroy(): void {
    this.horizontal.taps.buffer.destroy();
    this.vertical.taps.buffer.destroy();
    this.between.buffer.destroy();
  }
}

/**
 * The horizontal pass of Pillow's BICUBIC resize of `img` to plan.outWidth columns, into plan.between.
 * Then `resizedTiles` makes the rows (and as many groups of tiles as wanted from one horizontal pass).
 */
export function resizeRows(r: Recorder, img: GpuRgbImage, plan: TileResize): void {
  expectTensor("resizeRows bytes", img.bytes, "u32", [Math.ceil(img.width * img.height * 3 / 4)]);
  if (plan.width !== img.width || plan.height !== img.height) {
    throw new Error(
      `resizeRows: a plan for ${plan.width}×${plan.height} given a ${img.width}×${img.height} image`,
    );
  }
  const Wo = plan.outWidth;
  const h = flatGrid(img.height * Wo);
  r.dispatch("resize_bicubic", {
    bindings: [img.bytes, plan.horizontal.taps, plan.horizontal.taps, plan.between],
    params: [img.width, Wo, plan.horizontal.ksize, 1, 0, 0, h.groupsPerRow, img.height * Wo],
    workgroups: h.workgroups,
    constants: { MODE: 0 },
    label: `resize_bicubic rows ${img.width}→${Wo}`,
  });
}

/**
 * The vertical pass after `resizeRows`: the plan.outWidth × plan.outHeight image (multiples of S) as
 * normalised tiles, row-major, tile i of the image going to out[tileBase + i] — those that fall inside out
 * ([tiles, 3, S, S] f32; tileBase may be negative). lut: [3·256] f32 (normalizationTable of
 * src/image/pixel_values.ts). Byte-exact with bicubicResize then normalizeTiles (preprocessImage).
 */
export function resizedTiles(
  r: Recorder,
  plan: TileResize,
  lut: Tensor,
  out: Tensor,
  tileBase: number,
): void {
  const [tiles, , S] = out.shape;
  expectTensor("resizedTiles out", out, "f32", [tiles, 3, S, S]);
  expectTensor("resizedTiles lut", lut, "f32", [3 * 256]);
  const { outWidth: Wo, outHeight: Ho } = plan;
  if (!Number.isInteger(Wo / S) || !Number.isInteger(Ho / S) || !Number.isInteger(tileBase)) {
    throw new Error(`resizedTiles: ${Wo}×${Ho} is not whole tiles of ${S}² (${out.describe()})`);
  }
  const v = flatGrid(Ho * Wo);
  r.dispatch("resize_bicubic", {
    bindings: [plan.between, plan.vertical.taps, lut, out],
    params: [Wo, Ho, plan.vertical.ksize, S, tileBase, tiles, v.groupsPerRow, Ho * Wo],
    workgroups: v.workgroups,
    constants: { MODE: 1 },
    label: `resize_bicubic columns ${plan.height}→${Ho}`,
  });
}
