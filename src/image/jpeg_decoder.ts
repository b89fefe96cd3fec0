/**
 * JPEG bytes → RGB8, bit-exact with Pillow's `Image.open(f).convert('RGB')` on libjpeg-turbo defaults
 * (JDCT_ISLOW, fancy upsampling), in two halves: the markers and the entropy decoding run here
 * (jpeg_markers.ts, jpeg_entropy.ts: serial by nature), the reconstruction of rows (jpeg_reconstruct.ts)
 * runs in one band here or in bands on a worker pool (src/image/image_workers.ts). The structure follows
 * libjpeg-turbo's jdapistd.c with a full-image coefficient buffer (as it uses for progressive files).
 */
import { allocateCoefficients, type CoefficientPlanes, decodeCoefficients } from "./jpeg_entropy.ts";
import { type JpegFrame, readJpegStructure } from "./jpeg_markers.ts";
import { reconstructRows } from "./jpeg_reconstruct.ts";
import type { RgbImage } from "./rgb_image.ts";

export { JpegCorrupt, JpegUnsupported } from "./jpeg_markers.ts";

/**
 * Reconstructs every row of `out` ([frame.height, frame.width, 3] u8) from the coefficient planes, which
 * are being decoded meanwhile: progress[0] (Int32Array [1] on a SharedArrayBuffer) is the number of rows of
 * MCUs decoded so far (Atomics.notify'd on each change; jpeg_reconstruct.ts mcuRowsNeeded says how many
 * a band needs), −1 if decoding failed.
 */
export type BandRunner = (
  frame: JpegFrame,
  planes: CoefficientPlanes,
  out: Uint8Array,
  progress: Int32Array,
) => Promise<void>;

/** Decodes on the calling thread. Throws JpegCorrupt / JpegUnsupported. */
export function decodeJpegRgb(bytes: Uint8Array): RgbImage {
  const { frame, scans } = readJpegStructure(bytes);
  const planes = allocateCoefficients(frame, false);
  decodeCoefficients(bytes, frame, scans, planes);
  const data = new Uint8Array(frame.width * frame.height * 3);
  reconstructRows(frame, planes, 0, frame.height, data);
  return { width: frame.width, height: frame.height, data };
}

/**
 * Decodes with the reconstruction handed to `runBands` (e.g. ImageWorkers.reconstructJpeg), started
 * before the entropy decoding so that, for a single-scan (baseline) file, bands are reconstructed as their
 * rows of MCUs arrive. Planes and output are SharedArrayBuffer-backed, written in place. Same bytes as
 * decodeJpegRgb.
 */
export async function decodeJpegRgbWith(bytes: Uint8Array, runBands: BandRunner): Promise<RgbImage> {
  const { frame, scans } = readJpegStructure(bytes);
  const planes = allocateCoefficients(frame, true);
  const data = new Uint8Array(new SharedArrayBuffer(frame.width * frame.height * 3));
  const progress = new Int32Array(new SharedArrayBuffer(4));
  const report = (rows: number) => {
    Atomics.store(progress, 0, rows);
    Atomics.notify(progress, 0);
  };
  const bands = runBands(frame, planes, data, progress);
  try {
    decodeCoefficients(bytes, frame, scans, planes, report);
  } catch (err) {
    report(-1);
    await bands.catch(() => {}); // they fail for want of rows; the decoding error is the one to report
    throw err;
  }
  await bands;
  return { width: frame.width, height: frame.height, data };
}
