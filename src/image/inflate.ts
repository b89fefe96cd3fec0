import { constants, inflateSync } from "node:zlib";

/** Why zlib data could not give the bytes a decoder needs; decoders turn it into their own InputError. */
export class InflateError extends Error {}

/**
 * zlib-wrapped deflate data (PNG IDAT, TIFF Deflate strips) → exactly `expected` bytes; output past that
 * is ignored. Throws InflateError "does not inflate (…)" or "ends after N of M bytes". In one node:zlib call
 * when it can (`inflateSync`), else through the stream (data past the stream's end, corrupt data).
 */
export async function inflateExact(input: Uint8Array, expected: number): Promise<Uint8Array> {
  return inflateExactSync(input, expected) ?? await inflateThroughStream(input, expected);
}

/** `inflateExact` through the DecompressionStream, which ignores data past the zlib stream, as Pillow does. */
async function inflateThroughStream(input: Uint8Array, expected: number): Promise<Uint8Array> {
  // A Blob refuses a view on a SharedArrayBuffer (a worker's input, image_workers.ts): copy it out first.
  const plain = input.buffer instanceof SharedArrayBuffer ? input.slice() : input;
  const stream = new Blob([plain as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  const reader = stream.getReader();
  const out = new Uint8Array(expected);
  let filled = 0;
  try {
    while (filled < expected) {
      const { value, done } = await reader.read();
      if (done) break;
      const n = Math.min(value.length, expected - filled);
      out.set(value.subarray(0, n), filled);
      filled += n;
    }
  } catch (err) {
    throw new InflateError(`does not inflate (${(err as Error).message})`);
  } finally {
    reader.cancel().catch(() => {});
  }
  if (filled < expected) throw new InflateError(`ends after ${filled} of ${expected} bytes`);
  return out;
}

/**
 * The stream's result in one call that awaits nothing (node:zlib), so that a worker thread can decode a PNG
 * without the per-chunk awaits of a stream (which made a 12 MP PNG take 6.8 s in a node worker). Returns
 * null where only the stream can tell: data that does not inflate as one zlib stream (node:zlib also
 * refuses bytes after the stream's end, which the stream path ignores, as Pillow does) or that would give
 * far more than `expected` bytes (stopped at expected + 1 MiB, so a zip bomb never fills memory here).
 * Throws InflateError "ends after N of M bytes" for data that stops short.
 */
function inflateExactSync(input: Uint8Array, expected: number): Uint8Array | null {
  let out: Uint8Array;
  try {
    out = inflateSync(input, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: expected + (1 << 20) });
  } catch {
    return null;
  }
  if (out.length < expected) throw new InflateError(`ends after ${out.length} of ${expected} bytes`);
  return out.length === expected ? out : out.subarray(0, expected);
}
