/**
 * Test helpers that write safetensors files and sharded copies WITHOUT going through src/weights, so the
 * reader is checked against an independent writer/parser of the format.
 */
import { join } from "node:path";

export const FIXTURE_MODEL_DIR = new URL("../fixtures/tiny-internvl/model", import.meta.url).pathname;
export const FIXTURE_SAFETENSORS = join(FIXTURE_MODEL_DIR, "model.safetensors");

export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** Splits a safetensors file into its tensors, in header order (a plain re-implementation of the format). */
export function parseSafetensorsBytes(bytes: Uint8Array): RawTensor[] {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const dataStart = 8 + headerLength;
  const out: RawTensor[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: [begin, end] } = entry as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    out.push({ name, dtype, shape, data: bytes.slice(dataStart + begin, dataStart + end) });
  }
  return out;
}

/** Serialises tensors into safetensors bytes (header padded with spaces to 8 bytes, as the Rust writer does). */
export function encodeSafetensors(tensors: RawTensor[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

export async function writeSafetensors(path: string, tensors: RawTensor[]): Promise<void> {
  await Deno.writeFile(path, encodeSafetensors(tensors));
}

/**
 * Writes the fixture's tensors as `model-0000N-of-0000K.safetensors` + `model.safetensors.index.json` in
 * the transformers format, round-robin over the shards so every shard mixes dtypes. Returns the weight map.
 */
export async function writeShardedFixture(dir: string, shardCount: number): Promise<Record<string, string>> {
  const tensors = parseSafetensorsBytes(await Deno.readFile(FIXTURE_SAFETENSORS));
  const pad = (n: number) => String(n).padStart(5, "0");
  const shardName = (i: number) => `model-${pad(i + 1)}-of-${pad(shardCount)}.safetensors`;
  const shards: RawTensor[][] = Array.from({ length: shardCount }, () => []);
  tensors.forEach((t, i) => shards[i % shardCount].push(t));
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < shardCount; s++) {
    await writeSafetensors(join(dir, shardName(s)), shards[s]);
    for (const t of shards[s]) {
      weightMap[t.name] = shardName(s);
      totalSize += t.data.byteLength;
    }
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await Deno.writeTextFile(join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2));
  return weightMap;
}

/** Little-endian bytes of typed values, for building small test tensors. */
export function bytesOf(values: ArrayBufferView): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "weights_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
