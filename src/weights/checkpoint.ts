/**
 * A model directory's weights: `model.safetensors`, or `model.safetensors.index.json` + shards
 * (`model-0000N-of-00006.safetensors` for the real V1.5-Int8). Opening reads only the headers; tensor
 * bytes are read on demand by byte range through one file handle per shard.
 */
import { join } from "node:path";
import { bf16ToFloat32, f16ToFloat32 } from "./dtype.ts";
import { type LinearShape, type LinearWeights, readLinear } from "./linear.ts";
import { ModelFileError } from "./model_file_error.ts";
import {
  formatShape,
  openForReading,
  readRange,
  readSafetensorsHeader,
  type TensorInfo,
} from "./safetensors.ts";
import { INDEX_FILE, parseShardIndex } from "./shard_index.ts";

export type { TensorInfo } from "./safetensors.ts";

const SINGLE_FILE = "model.safetensors";

export interface OpenCheckpointOptions {
  /**
   * Called as tensor bytes arrive (every ≤16 MiB): bytes read so far through this checkpoint and the
   * size of all its tensors, so reading every tensor once ends at bytesRead === totalBytes.
   */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
}

export class Checkpoint {
  /** Sum of every tensor's byteLength. */
  readonly totalBytes: number;
  /** Tensor bytes read so far (counts a tensor again if it is read twice). */
  bytesRead = 0;
  #handles = new Map<string, Promise<Deno.FsFile>>();
  // One handle per shard is shared, and seek+read is not atomic, so reads of a shard are queued.
  #queues = new Map<string, Promise<unknown>>();
  #closed = false;

  constructor(
    /** The model directory. */
    readonly dir: string,
    /** Every tensor by name; insertion order follows the index / header. */
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** Safetensors files (full paths), in shard order. */
    readonly files: readonly string[],
    readonly onProgress?: (bytesRead: number, totalBytes: number) => void,
  ) {
    let total = 0;
    for (const t of tensors.values()) total += t.byteLength;
    this.totalBytes = total;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The tensor's header entry; a missing name is an error that names it and the directory. */
  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new ModelFileError(`Tensor "${name}" is not in the checkpoint at ${this.dir}`, this.dir);
    return info;
  }

  /** The raw little-endian bytes of one tensor, in a fresh buffer. */
  readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    if (this.#closed) return Promise.reject(new Error(`Checkpoint at ${this.dir} is closed`));
    const read = async () => {
      const handle = await this.#handle(info.file);
      const out = new Uint8Array(info.byteLength);
      await readRange(handle, info.offset, out, info.file, (n) => {
        this.bytesRead += n;
        this.onProgress?.(this.bytesRead, this.totalBytes);
      });
      return out;
    };
    const previous = this.#queues.get(info.file) ?? Promise.resolve();
    const result = previous.then(read, read);
    this.#queues.set(info.file, result.catch(() => {}));
    return result;
  }

  /**
   * A BF16/F16/F32 tensor widened to f32. With `expectedShape`, a different header shape is an error
   * naming both, so a config/checkpoint mismatch fails at load instead of producing noise.
   */
  async readFloat32(name: string, expectedShape?: readonly number[]): Promise<Float32Array> {
    const info = this.info(name);
    if (expectedShape) this.checkShape(name, expectedShape);
    if (info.dtype !== "BF16" && info.dtype !== "F16" && info.dtype !== "F32") {
      throw new ModelFileError(
        `Tensor "${name}" in ${info.file} is ${info.dtype}, not a float tensor` +
          (info.dtype === "I8" ? "; int8 weights are read with readLinear" : ""),
        info.file,
      );
    }
    const bytes = await this.readBytes(name);
    if (info.dtype === "BF16") return bf16ToFloat32(bytes);
    if (info.dtype === "F16") return f16ToFloat32(bytes);
    return new Float32Array(bytes.buffer, 0, bytes.byteLength >>> 2);
  }

  /**
   * `prefix.weight` (+ `prefix.SCB`, `prefix.bias`) of one nn.Linear: int8 when the weight is I8 with an
   * SCB sibling (bitsandbytes LLM.int8), float otherwise; see linear.ts.
   */
  readLinear(prefix: string, shape: LinearShape): Promise<LinearWeights> {
    return readLinear(this, prefix, shape);
  }

  /** Throws unless the tensor exists with exactly this shape. */
  checkShape(name: string, expectedShape: readonly number[]): void {
    const info = this.info(name);
    const same = info.shape.length === expectedShape.length &&
      info.shape.every((d, i) => d === expectedShape[i]);
    if (!same) {
      throw new ModelFileError(
        `Tensor "${name}" in ${info.file} has shape ${formatShape(info.shape)}, but the config expects ` +
          formatShape(expectedShape),
        info.file,
      );
    }
  }

  /** Closes the shard handles; later reads fail. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#queues.values());
    for (const handle of this.#handles.values()) {
      try {
        (await handle).close();
      } catch {
        // A handle that failed to open has nothing to close.
      }
    }
    this.#handles.clear();
  }

  #handle(file: string): Promise<Deno.FsFile> {
    let handle = this.#handles.get(file);
    if (!handle) {
      handle = openForReading(file);
      this.#handles.set(file, handle);
    }
    return handle;
  }
}

/**
 * Opens the weights of a model directory: the sharded index if present, else `model.safetensors`.
 * Every header is read and checked (dtypes, offsets within the file) before this resolves.
 */
export async function openCheckpoint(dir: string, options: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  const indexPath = join(dir, INDEX_FILE);
  const singlePath = join(dir, SINGLE_FILE);
  const tensors = new Map<string, TensorInfo>();
  const files: string[] = [];

  if (await exists(indexPath)) {
    const index = parseShardIndex(await Deno.readTextFile(indexPath), indexPath);
    const shardNames = [...new Set(index.weightMap.values())];
    for (const shard of shardNames) {
      if (!(await exists(join(dir, shard)))) {
        const example = [...index.weightMap].find(([, s]) => s === shard)![0];
        throw new ModelFileError(
          `${indexPath} maps tensors (e.g. "${example}") to shard ${shard}, which is missing from ${dir}`,
          indexPath,
        );
      }
    }
    const headers = new Map<string, Map<string, TensorInfo>>();
    for (const shard of shardNames) {
      const header = await readSafetensorsHeader(join(dir, shard));
      headers.set(shard, new Map(header.tensors.map((t) => [t.name, t])));
      files.push(header.file);
    }
    for (const [name, shard] of index.weightMap) {
      const info = headers.get(shard)!.get(name);
      if (!info) {
        throw new ModelFileError(
          `${indexPath} says tensor "${name}" is in ${shard}, but that shard's header does not list it`,
          indexPath,
        );
      }
      tensors.set(name, info);
    }
  } else if (await exists(singlePath)) {
    const header = await readSafetensorsHeader(singlePath);
    for (const t of header.tensors) tensors.set(t.name, t);
    files.push(header.file);
  } else {
    throw new ModelFileError(
      `No ${SINGLE_FILE} or ${INDEX_FILE} in ${dir}; point the model directory at an HF safetensors checkpoint`,
      dir,
    );
  }
  return new Checkpoint(dir, tensors, files, options.onProgress);
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
