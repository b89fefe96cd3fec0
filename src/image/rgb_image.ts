/**
 * The one in-memory image type of the preprocessing pipeline: what PIL calls an "RGB" image.
 * Every decoder ends here and every later stage (resize, crop, normalise) starts here.
 */
export interface RgbImage {
  width: number;
  height: number;
  /** data: [height, width, 3] u8, row-major, channels R, G, B. */
  data: Uint8Array;
}

/** Allocates a zero-filled image; width and height must be positive integers. */
export function newRgbImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/**
 * Copies the rectangle [left, right) × [top, bottom) out of `img`, like PIL `Image.crop(box)` for a box
 * that lies inside the image (the only case dynamic tiling produces).
 */
export function cropRgbImage(
  img: RgbImage,
  left: number,
  top: number,
  right: number,
  bottom: number,
): RgbImage {
  if (left < 0 || top < 0 || right > img.width || bottom > img.height || right <= left || bottom <= top) {
    throw new RangeError(
      `Crop box (${left}, ${top}, ${right}, ${bottom}) is not inside a ${img.width}×${img.height} image`,
    );
  }
  const out = newRgbImage(right - left, bottom - top);
  const rowBytes = out.width * 3;
  for (let y = 0; y < out.height; y++) {
    const src = ((top + y) * img.width + left) * 3;
    out.data.set(img.data.subarray(src, src + rowBytes), y * rowBytes);
  }
  return out;
}
