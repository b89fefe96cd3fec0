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
 * Resizes `img` like Pillow's BICUBIC to plan.outWidth × plan.outHeight (multiples of S) and writes the
 * result as normalised tiles, row-major, into out[tileBase …]: out [tiles, 3, S, S] f32, lut [3·256] f32
 * (src/image/pixel_values.ts normalizationTable). Byte-exact with src/image/bicubic_resize.ts followed by
 * normalizeTiles, so the pixel values equal those of preprocessImage.
 */
export function resizeBicubicTiles(
  r: Recorder,
  img: GpuRgbImage,
  plan: TileResize,
  lut: Tensor,
  out: Tensor,
  tileBase: number,
): void {
  const [tiles, , S] = out.shape;
  expectTensor("resizeBicubicTiles out", out, "f32", [tiles, 3, S, S]);
  expectTensor("resizeBicubicTiles lut", lut, "f32", [3 * 256]);
  expectTensor("resizeBicubicTiles bytes", img.bytes, "u32", [Math.ceil(img.width * img.height * 3 / 4)]);
  if (plan.width !== img.width || plan.height !== img.height) {
    throw new Error(
      `resizeBicubicTiles: a plan for ${plan.width}×${plan.height} given a ${img.width}×${img.height} image`,
    );
  }
  const { outWidth: Wo, outHeight: Ho } = plan;
  const count = (Wo / S) * (Ho / S);
  if (!Number.isInteger(Wo / S) || !Number.isInteger(Ho / S) || tileBase < 0 || tileBase + count > tiles) {
    throw new Error(
      `resizeBicubicTiles: ${Wo}×${Ho} is not ${count} whole tiles of ${S}² from tile ${tileBase} of ${out.describe()}`,
    );
  }
  const h = flatGrid(img.height * Wo);
  r.dispatch("resize_bicubic", {
    bindings: [img.bytes, plan.horizontal.taps, lut, plan.between],
    params: [img.width, Wo, plan.horizontal.ksize, S, 0, h.groupsPerRow, img.height * Wo],
    workgroups: h.workgroups,
    constants: { MODE: 0 },
    label: `resize_bicubic rows ${img.width}→${Wo}`,
  });
  const v = flatGrid(Ho * Wo);
  r.dispatch("resize_bicubic", {
    bindings: [plan.between, plan.vertical.taps, lut, out],
    params: [Wo, Ho, plan.vertical.ksize, S, tileBase, v.groupsPerRow, Ho * Wo],
    workgroups: v.workgroups,
    constants: { MODE: 1 },
    label: `resize_bicubic columns ${img.height}→${Ho}`,
  });
}
