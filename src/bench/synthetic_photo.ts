/**
 * A smooth photo-like picture with mild noise, fixed by its size, encoded the way a camera or a browser
 * would send it: what the image-preprocessing measurements decode and tile (scripts/bench_image.ts, the
 * bench's time to first token from image bytes).
 */
import { Image } from "imagescript";

export function syntheticPhoto(width: number, height: number): Image {
  const img = new Image(width, height);
  const px = img.bitmap; // [H, W, 4] RGBA u8
  let s = (width * 73856093) ^ (height * 19349663);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const n = (s >>> 28) - 8;
      const i = (y * width + x) * 4;
      px[i] = (128 + 100 * Math.sin(x / 97) * Math.cos(y / 131) + n) & 255;
      px[i + 1] = ((255 * x) / width + n) & 255;
      px[i + 2] = ((255 * y) / height + ((x >> 5) & 16) + n) & 255;
      px[i + 3] = 255;
    }
  }
  return img;
}

/** The photo as JPEG at quality 90. */
export function syntheticJpeg(width: number, height: number): Promise<Uint8Array> {
  return syntheticPhoto(width, height).encodeJPEG(90);
}
