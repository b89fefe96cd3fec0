/** Why zlib data could not give the bytes a decoder needs; decoders turn it into their own InputError. */
export class InflateError extends Error {}

/**
 * zlib-wrapped deflate data (PNG IDAT, TIFF Deflate strips) → exactly `expected` bytes; output past that
 * is ignored. Throws InflateError "does not inflate (…)" or "ends after N of M bytes".
 */
export async function inflateExact(input: Uint8Array, expected: number): Promise<Uint8Array> {
  const stream = new Blob([input as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
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
