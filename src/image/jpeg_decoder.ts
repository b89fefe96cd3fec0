/**
 * JPEG bytes → RGB8, bit-exact with Pillow's `Image.open(f).convert('RGB')` on libjpeg-turbo defaults
 * (JDCT_ISLOW, fancy upsampling), in three parts: the markers (jpeg_markers.ts: cheap), the entropy
 * decoding (jpeg_entropy.ts: serial by nature, the costly half) and the reconstruction of rows
 * (jpeg_reconstruct.ts: independent per band of rows). decodeJpegRgb runs all three on the calling
 * thread; a SharedJpegDecode spreads the last two over worker threads (src/image/image_workers.ts
 * decodeJpeg) while the calling thread only parses the markers and allocates. The structure follows
 * libjpeg-turbo's jdapistd.c with a full-image coefficient buffer (as it uses for progressive files).
 */
import { allocateCoefficients, decodeCoefficients } from "./jpeg_entropy.ts";
import { type JpegFrame, type JpegScan, readJpegStructure } from "./jpeg_markers.ts";
import { mcuRowsNeeded, reconstructRows } from "./jpeg_reconstruct.ts";
import type { RgbImage } from "./rgb_image.ts";

export { JpegCorrupt, JpegUnsupported } from "./jpeg_markers.ts";

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
 * One JPEG decode shared between threads, everything it touches in SharedArrayBuffers (posted to workers
 * as is: nothing is copied). One thread runs `runJpegEntropy` (the entropy decoding, then it helps with
 * the rows), any number run `runJpegBands` meanwhile: each claims the next band of rows and waits until
 * the rows of MCUs it needs are decoded, so for a single-scan (baseline) file the bands follow the
 * Huffman pass and only the last band is left when it ends.
 */
export interface SharedJpegDecode {
  /** bytes: [n] u8, the file. */
  bytes: SharedArrayBuffer;
  frame: JpegFrame;
  scans: JpegScan[];
  /** planes[c]: [blockRows, blocksPerLine, 64] i16 of component c (allocateCoefficients). */
  planes: SharedArrayBuffer[];
  /** out: [height, width, 3] u8. */
  out: SharedArrayBuffer;
  /**
   * state: [2] i32. [0]: rows of MCUs decoded so far, −1 once decoding failed (Atomics.notify'd on each
   * change); [1]: the next band to claim.
   */
  state: SharedArrayBuffer;
  /** bands: [count, 2] output rows y0, y1 (exclusive) of each band, top to bottom. */
  bands: number[];
}

/**
 * The calling thread's part: the markers (throws JpegCorrupt / JpegUnsupported right here) and the shared
 * buffers, the rows cut into `bandCount` bands (fewer if that leaves a band under `minBandRows` rows).
 */
export function prepareSharedJpegDecode(
  bytes: Uint8Array,
  bandCount: number,
  minBandRows: number,
): SharedJpegDecode {
  const { frame, scans } = readJpegStructure(bytes);
  // A copy of exactly the file: posting `bytes` itself would copy its whole underlying buffer per job.
  const file = new Uint8Array(new SharedArrayBuffer(bytes.length));
  file.set(bytes);
  const rows = frame.height;
  const count = Math.max(1, Math.min(bandCount, Math.floor(rows / minBandRows)));
  const bands: number[] = [];
  for (let b = 0; b < count; b++) {
    bands.push(Math.floor((rows * b) / count), Math.floor((rows * (b + 1)) / count));
  }
  return {
    bytes: file.buffer as SharedArrayBuffer,
    frame,
    scans,
    planes: allocateCoefficients(frame, true).map((p) => p.buffer as SharedArrayBuffer),
    out: new SharedArrayBuffer(frame.width * frame.height * 3),
    state: new SharedArrayBuffer(8),
    bands,
  };
}

/** Marks the decode failed (state[0] = −1) and wakes the band runners waiting for rows, so they give up. */
export function abandonSharedJpegDecode(d: SharedJpegDecode): void {
  const state = new Int32Array(d.state);
  Atomics.store(state, 0, -1);
  Atomics.notify(state, 0);
}

/**
 * The entropy decoding of `d` (throws JpegCorrupt, after abandoning the decode), publishing each row of
 * MCUs, then band runs like runJpegBands until no band is left. Never waits on another thread.
 */
export function runJpegEntropy(d: SharedJpegDecode): void {
  const state = new Int32Array(d.state);
  const report = (rows: number) => {
    Atomics.store(state, 0, rows);
    Atomics.notify(state, 0);
  };
  try {
    decodeCoefficients(
      new Uint8Array(d.bytes),
      d.frame,
      d.scans,
      d.planes.map((b) => new Int16Array(b)),
      report,
    );
  } catch (err) {
    abandonSharedJpegDecode(d);
    throw err;
  }
  runJpegBands(d);
}

/**
 * Claims bands of `d` until none is left, each reconstructed once its rows of MCUs are decoded (blocking
 * in Atomics.wait meanwhile: call it only from a worker, and only once runJpegEntropy has started on
 * another thread). Throws if the decode is abandoned.
 */
export function runJpegBands(d: SharedJpegDecode): void {
  const state = new Int32Array(d.state);
  const planes = d.planes.map((b) => new Int16Array(b)), out = new Uint8Array(d.out);
  const count = d.bands.length / 2;
  for (let b = Atomics.add(state, 1, 1); b < count; b = Atomics.add(state, 1, 1)) {
    const y0 = d.bands[2 * b], y1 = d.bands[2 * b + 1];
    const needed = mcuRowsNeeded(d.frame, y1);
    for (let done = Atomics.load(state, 0); done < needed; done = Atomics.load(state, 0)) {
      if (done < 0) throw new Error("the JPEG's entropy decoding failed");
      Atomics.wait(state, 0, done);
    }
    reconstructRows(d.frame, planes, y0, y1, out);
  }
}
