/**
 * JPEG bytes → RGB8, bit-exact with Pillow's `Image.open(f).convert('RGB')` on libjpeg-turbo defaults
 * (JDCT_ISLOW, fancy upsampling), in two halves: the markers and the entropy decoding run here
 * (jpeg_markers.ts, jpeg_entropy.ts: serial by nature), the reconstruction of rows (jpeg_reconstruct.ts)
 * runs in one band here or in bands on a worker pool (src/image/image_workers.ts). The structure follows
 * libjpeg-turbo's jdapistd.c with a full-image coefficient buffer (as it uses for progressive files).
 */
import { type CoefficientPlanes, decodeCoefficients } from "./jpeg_entropy.ts";
import { type JpegFrame, readJpegStructure } from "./jpeg_markers.ts";
import { reconstructRows } from "./jpeg_reconstruct.ts";
import type { RgbImage } from "./rgb_image.ts";

export { JpegCorrupt, JpegUnsupported } from "./jpeg_markers.ts";

/** Reconstructs every row of `out` ([frame.height, frame.width, 3] u8) from the coefficient planes. */
export type BandRunner = (frame: JpegFrame, planes: CoefficientPlanes, out: Uint8Array) => Promise<void>;

/** Decodes on the calling thread. Throws JpegCorrupt / JpegUnsupported. */
export function decodeJpegRgb(bytes: Uint8Array): RgbImage {
  const { frame, scans } = readJpegStructure(bytes);
  const planes = decodeCoefficients(bytes, frame, scans);
  const data = new Uint8Array(frame.width * frame.height * 3);
  reconstructRows(frame, planes, 0, frame.height, data);
  return { width: frame.width, height: frame.height, data };
}

/**
 * Decodes with the reconstruction handed to `runBands` (e.g. ImageWorkers.reconstructJpeg): the planes
 * and the output are SharedArrayBuffer-backed, so bands can be written in place. Same bytes as
 * decodeJpegRgb.
 */
export async function decodeJpegRgbWith(bytes: Uint8Array, runBands: BandRunner): Promise<RgbImage> {
  const { frame, scans } = readJpegStructure(bytes);
  const planes = decodeCoefficients(bytes, frame, scans, true);
  const data = new Uint8Array(new SharedArrayBuffer(frame.width * frame.height * 3));
  await runBands(frame, planes, data);
  return { width: frame.width, height: frame.height, data };
}
