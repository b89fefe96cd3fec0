/**
 * One safetensors file: `u64 LE header length N`, `N bytes of JSON` ({name: {dtype, shape, data_offsets}},
 * plus an optional `__metadata__` string map), then the raw little-endian data section. Offsets in the
 * header are relative to the data section. Only the header is read here; tensor bytes are read later by
 * byte range, so a 5 GB shard never sits in memory.
 */
import { type Dtype, DTYPE_BYTES, isDtype } from "./dtype.ts";
import { ModelFileError } from "./model_file_error.ts";

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  /** Row-major; [] for a 0-dim scalar. */
  shape: number[];
  byteLength: number;
  /** Path of the safetensors file that holds the data. */
  file: string;
  /** Absolute byte offset of the first data byte within `file`. */
  offset: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** `__metadata__` ({"format": "pt"} for PyTorch-written files), null when absent. */
  metadata: Record<string, string> | null;
  /** In header order. */
  tensors: TensorInfo[];
}

// The reference implementation (safetensors crate) refuses headers over 100 MB; a bigger length means
// a corrupt or non-safetensors file, and we should not try to allocate it.
const MAX_HEADER_BYTES = 100_000_000;

/** Reads and validates the header of one safetensors file; touches no tensor data. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  using handle = await openForReading(file);
  const fileSize = (await handle.stat()).size;
  if (fileSize < 8) {
    throw new ModelFileError(
      `${file} is ${fileSize} bytes, too short for a safetensors header; it is truncated`,
      file,
    );
  }
  const lengthBytes = new Uint8Array(8);
  await readRange(handle, 0, lengthBytes, file);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(fileSize - 8)) {
    throw new ModelFileError(
      `${file}: header length ${headerLength} runs past the end of the file (${fileSize} bytes); ` +
        "the file is truncated or not safetensors",
      file,
    );
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelFileError(
      `${file}: header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`,
      file,
    );
  }
  const headerBytes = new Uint8Array(Number(headerLength));
  await readRange(handle, 8, headerBytes, file);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new ModelFileError(`${file}: the header is not valid JSON (${(err as Error).message})`, file);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ModelFileError(`${file}: the header must be a JSON object`, file);
  }

  const dataStart = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, begin, end } = checkEntry(file, name, entry);
    if (end > dataSize) {
      throw new ModelFileError(
        `${file}: tensor "${name}" needs data bytes [${begin}, ${end}) but the data section has only ` +
          `${dataSize} bytes; the file is truncated`,
        file,
      );
    }
    tensors.push({ name, dtype, shape, byteLength: end - begin, file, offset: dataStart + begin });
  }
  return { file, fileSize, metadata, tensors };
}

function checkEntry(file: string, name: string, entry: unknown) {
  const bad = (what: string) => new ModelFileError(`${file}: tensor "${name}" ${what}`, file);
  if (entry === null || typeof entry !== "object") throw bad("has no {dtype, shape, data_offsets} entry");
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw bad(
      `has unknown dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(", ")}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw bad(`has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = shape.reduce((a: number, d: number) => a * d, 1) * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw bad(`spans ${end - begin} bytes, but ${dtype} ${formatShape(shape)} needs ${expected}`);
  }
  return { dtype, shape: shape as number[], begin, end };
}

export async function openForReading(file: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(file, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new ModelFileError(`${file} does not exist`, file);
    throw err;
  }
}

// Reads are chunked so progress callbacks keep moving while a 1 GB LM head loads.
const READ_CHUNK_BYTES = 16 << 20;

/**
 * Fills `into` with the file's bytes starting at `offset`. Loops because a read may return fewer bytes
 * than asked; end of file before `into` is full means the file shrank or was cut short.
 */
export async function readRange(
  handle: Deno.FsFile,
  offset: number,
  into: Uint8Array,
  file: string,
  onChunk?: (bytes: number) => void,
): Promise<void> {
  await handle.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < into.byteLength) {
    const n = await handle.read(into.subarray(filled, filled + READ_CHUNK_BYTES));
    if (n === null || n === 0) {
      throw new ModelFileError(
        `${file} ended at byte ${offset + filled}, before the ${into.byteLength} bytes requested at offset ` +
          `${offset}; the file is truncated`,
        file,
      );
    }
    filled += n;
    onChunk?.(n);
  }
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
