/**
 * Deno KV rejects values over 64 KiB, so byte strings are stored as numbered chunks of CHUNK_BYTES
 * (room left for the value's serialization header).
 */
export const CHUNK_BYTES = 60_000;

/** Splits `bytes` into views of at most CHUNK_BYTES; an empty input gives one empty chunk. */
export function splitChunks(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 0) return [new Uint8Array(0)];
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
    chunks.push(bytes.slice(at, Math.min(at + CHUNK_BYTES, bytes.length)));
  }
  return chunks;
}

export function joinChunks(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Lowercase hex SHA-256, the content address of an image. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
