/**
 * Pillow-exact bicubic resizes on worker threads. A 12-megapixel photo took ~400 ms to decode and ~300 ms
 * to resize on one core (its 6-tile grid and its thumbnail, both from the full image;
 * `deno run -A scripts/bench_image.ts`), all of it on the thread that also serves HTTP and feeds the GPU.
 * Both passes of bicubic_resize.ts are independent per row (horizontal: per source row; vertical: per
 * output row), so each pass is cut into bands of rows, one job per band, and the bytes stay where they
 * are: images live in SharedArrayBuffers that every worker reads and writes. The result is byte-identical
 * to `bicubicResize` (the same integer sums per pixel, whatever thread computes them).
 * A PNG or a TIFF decodes here as one job (decodeFile) since its inflate is one node:zlib call (inflate.ts):
 * through the DecompressionStream each await of a chunk cost milliseconds in a node worker, and a
 * 12-megapixel PNG took 6.8 s instead of 0.77 (2026-11-26, PERF.md v24). Our JPEG decoder awaits nothing,
 * so all of it but the markers comes here (decodeJpeg):
 * its entropy decoding, serial, as one job (~150–250 ms of a 12-megapixel file, which on the calling
 * thread stalled the GPU work of requests already generating), and the reconstruction of rows (IDCT,
 * upsampling, colour; src/image/jpeg_reconstruct.ts), independent per band of rows, as band jobs that
 * follow it, in place, from coefficient planes in SharedArrayBuffers.
 * node:worker_threads rather than Web Workers: an idle worker is unref'd, so a pool never keeps a finished
 * script (scripts/chat.ts) alive (a live Web Worker kept one running forever); a worker holding a band is
 * ref'd, as Node's semantics want for pending work.
 */
import { Worker } from "node:worker_threads";
import { fromWire, type WireError } from "../wire_error.ts";
import { checkResizeTarget } from "./bicubic_resize.ts";
import {
  abandonSharedJpegDecode,
  JpegCorrupt,
  JpegUnsupported,
  prepareSharedJpegDecode,
  type SharedJpegDecode,
} from "./jpeg_decoder.ts";
import type { RgbImage } from "./rgb_image.ts";

/** A band of one resize pass, as posted to src/image/image_worker.ts. */
export interface ResizeBandJob {
  kind: "resize";
  id: number;
  pass: "horizontal" | "vertical";
  src: SharedArrayBuffer; // [srcHeight, srcWidth, 3] u8
  srcWidth: number;
  srcHeight: number;
  out: SharedArrayBuffer; // [outHeight, outWidth, 3] u8
  outWidth: number;
  outHeight: number;
  /** Rows y0 … y1−1: source rows of a horizontal pass, output rows of a vertical one. */
  y0: number;
  y1: number;
}

/**
 * A JPEG decode's entropy job (jpeg_decoder.ts runJpegEntropy: the Huffman pass, then bands of rows) or
 * one of its band jobs (runJpegBands), over the buffers of one SharedJpegDecode.
 */
export interface JpegJob extends SharedJpegDecode {
  kind: "jpeg_entropy" | "jpeg_bands";
  id: number;
}

/**
 * A whole PNG or TIFF decode (png_decoder.ts, tiff_decoder.ts): the file's bytes in, RGB8
 * [height, width, 3] out; width × height as its header declares (each decoder checks it again).
 */
export interface FileJob {
  kind: "file";
  format: "PNG" | "TIFF";
  id: number;
  bytes: SharedArrayBuffer;
  out: SharedArrayBuffer;
  width: number;
  height: number;
}

export type BandJob = ResizeBandJob | JpegJob | FileJob;

/** A worker's answer: the job's id, or what went wrong. */
export interface BandDone {
  id: number;
  error?: WireError;
}

/** Fewest rows a band is given: below this the message round trip costs more than the rows. */
const minBandRows = 32;

/** The default pool size: one worker per core, at most 8 (bands past that gain little). */
export function defaultImageWorkers(): number {
  return Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
}

interface Pending {
  resolve: (done: BandDone) => void;
  reject: (err: Error) => void;
  worker: Worker;
}

/** An image whose bytes are in a SharedArrayBuffer (so workers can read or write them in place). */
function sharedImage(width: number, height: number): RgbImage & { buffer: SharedArrayBuffer } {
  const buffer = new SharedArrayBuffer(width * height * 3);
  return { width, height, data: new Uint8Array(buffer), buffer };
}

function asShared(img: RgbImage): RgbImage & { buffer: SharedArrayBuffer } {
  const d = img.data;
  if (d.buffer instanceof SharedArrayBuffer && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength) {
    return { ...img, buffer: d.buffer };
  }
  const copy = sharedImage(img.width, img.height);
  copy.data.set(d);
  return copy;
}

export class ImageWorkers {
  readonly size: number;
  #workers: Worker[] = [];
  #idle: Worker[] = [];
  /** Jobs waiting for a worker: JPEG entropy jobs first (see decodeJpeg), then the rest in order. */
  #queue: { job: BandJob; pending: Omit<Pending, "worker"> }[] = [];
  #running = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  /** Workers that have answered a job: one that dies before its first answer cannot start at all. */
  #answered = new WeakSet<Worker>();
  /** Set when a worker could not start: every job then fails with it, instead of respawning forever. */
  #broken: Error | null = null;

  /** Workers started so far (respawns included). */
  spawned = 0;
  readonly #module: URL;

  /**
   * `size` worker threads (≥ 1); close() ends them. `workerModule` replaces src/image/image_worker.ts
   * (tests: a module that does not load).
   */
  constructor(size: number, options: { workerModule?: URL } = {}) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`ImageWorkers needs ≥ 1 worker, got ${size}`);
    }
    this.size = size;
    this.#module = options.workerModule ?? new URL("./image_worker.ts", import.meta.url);
    for (let i = 0; i < size; i++) this.#spawn();
  }

  #spawn(): void {
    const worker = new Worker(this.#module);
    this.spawned++;
    worker.unref();
    worker.on("message", (done: BandDone) => this.#finished(worker, done));
    worker.on("error", (err: Error) => {
      // A worker that dies takes its job with it: fail that job and put a fresh worker in its place, unless
      // it died before ever answering (its module does not load): then no worker will, and all jobs fail.
      const failure = new Error(`image worker failed: ${err.message}`);
      this.#workers = this.#workers.filter((w) => w !== worker);
      this.#idle = this.#idle.filter((w) => w !== worker);
      for (const [id, p] of this.#running) {
        if (p.worker !== worker) continue;
        this.#running.delete(id);
        p.reject(failure);
      }
      worker.terminate();
      if (this.#closed) return;
      if (!this.#answered.has(worker)) {
        this.#broken = failure;
        for (const q of this.#queue.splice(0)) q.pending.reject(failure);
        return;
      }
      this.#spawn();
      this.#pump();
    });
    this.#workers.push(worker);
    this.#idle.push(worker);
  }

  #finished(worker: Worker, done: BandDone): void {
    const p = this.#running.get(done.id);
    this.#running.delete(done.id);
    this.#answered.add(worker);
    worker.unref();
    this.#idle.push(worker);
    if (p) {
      if (done.error) p.reject(workerError(done.error));
      else p.resolve(done);
    }
    this.#pump();
  }

  #pump(): void {
    while (this.#idle.length && this.#queue.length) {
      const worker = this.#idle.pop()!;
      const { job, pending } = this.#queue.shift()!;
      this.#running.set(job.id, { ...pending, worker });
      worker.ref();
      worker.postMessage(job);
    }
  }

  #submit(job: BandJob): Promise<BandDone> {
    if (this.#closed) return Promise.reject(new Error("ImageWorkers is closed"));
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      const entry = { job, pending: { resolve, reject } };
      if (job.kind === "jpeg_entropy") {
        const at = this.#queue.findIndex((q) => q.job.kind !== "jpeg_entropy");
        this.#queue.splice(at < 0 ? this.#queue.length : at, 0, entry);
      } else this.#queue.push(entry);
      this.#pump();
    });
  }

  /** One pass over `rows` rows, cut into up to `size` bands of at least minBandRows rows. */
  async #pass(
    pass: ResizeBandJob["pass"],
    src: RgbImage & { buffer: SharedArrayBuffer },
    out: RgbImage & { buffer: SharedArrayBuffer },
    rows: number,
  ): Promise<void> {
    const bands = Math.max(1, Math.min(this.size, Math.floor(rows / minBandRows)));
    const jobs: Promise<BandDone>[] = [];
    for (let b = 0; b < bands; b++) {
      const y0 = Math.floor((rows * b) / bands), y1 = Math.floor((rows * (b + 1)) / bands);
      jobs.push(this.#submit({
        kind: "resize",
        id: this.#nextId++,
        pass,
        src: src.buffer,
        srcWidth: src.width,
        srcHeight: src.height,
        out: out.buffer,
        outWidth: out.width,
        outHeight: out.height,
        y0,
        y1,
      }));
    }
    await Promise.all(jobs);
  }

  /**
   * `bicubicResize(img, width, height)` on the workers: the same bytes. The result's data is backed by a
   * SharedArrayBuffer. Several resizes may run at once; their bands share the workers.
   */
  async resize(img: RgbImage, width: number, height: number): Promise<RgbImage> {
    checkResizeTarget(width, height);
    if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
    let cur = asShared(img);
    if (width !== cur.width) {
      const next = sharedImage(width, cur.height);
      await this.#pass("horizontal", cur, next, cur.height);
      cur = next;
    }
    if (height !== cur.height) {
      const next = sharedImage(cur.width, height);
      await this.#pass("vertical", cur, next, height);
      cur = next;
    }
    return { width: cur.width, height: cur.height, data: cur.data };
  }

  /**
   * `decodeJpegRgb(bytes)` on the workers: the same bytes (backed by a SharedArrayBuffer), the same
   * JpegCorrupt / JpegUnsupported. This thread only reads the markers, allocates and awaits: the entropy
   * decoding is one job, on one worker, and up to size − 1 band jobs reconstruct rows on the others as
   * the rows of MCUs arrive; once done with the entropy, its worker takes bands too (with one worker it
   * does everything, one part after the other).
   * No deadlock: a band job blocks its worker until its rows are decoded, so it must never hold a worker
   * while its entropy job waits in the queue. The entropy job is queued before its band jobs, entropy
   * jobs go ahead of every other job (#submit: the serial part starts first) and jobs leave the queue
   * from the front, so a band job reaches a worker only after its entropy job did; an entropy job waits
   * on nothing, so every blocked band job waits on one that is running and will end (or abandon).
   */
  async decodeJpeg(bytes: Uint8Array): Promise<RgbImage> {
    const d = prepareSharedJpegDecode(bytes, this.size * 8, minBandRows);
    const entropy = this.#submit({ ...d, kind: "jpeg_entropy", id: this.#nextId++ });
    const bandJobs: Promise<BandDone>[] = [];
    for (let i = 1; i < Math.min(this.size, d.bands.length / 2); i++) {
      bandJobs.push(this.#submit({ ...d, kind: "jpeg_bands", id: this.#nextId++ }));
    }
    // Settled at once: a band job fails as soon as the entropy does, before anyone awaits it.
    const bands = Promise.allSettled(bandJobs);
    try {
      await entropy;
    } catch (err) {
      // Its worker abandoned the decode already, unless it died: release the band jobs either way.
      abandonSharedJpegDecode(d);
      await bands; // they fail for want of rows; the entropy error is the one to report
      throw err;
    }
    for (const b of await bands) if (b.status === "rejected") throw b.reason;
    return { width: d.frame.width, height: d.frame.height, data: new Uint8Array(d.out) };
  }

  /**
   * `decodePng(bytes)` or `decodeTiff(bytes, width, height)` as one job on a worker: the same bytes (backed
   * by a SharedArrayBuffer) and the same InputErrors, while this thread stays free (a 12-megapixel PNG
   * takes ~0.4–0.6 s to inflate and unfilter). width × height: the size its header declares.
   */
  async decodeFile(
    format: FileJob["format"],
    bytes: Uint8Array,
    width: number,
    height: number,
  ): Promise<RgbImage> {
    const input = new SharedArrayBuffer(bytes.length);
    new Uint8Array(input).set(bytes);
    const out = new SharedArrayBuffer(width * height * 3);
    await this.#submit({ kind: "file", format, id: this.#nextId++, bytes: input, out, width, height });
    return { width, height, data: new Uint8Array(out) };
  }

  /** Ends the workers; resizes still queued or running fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    const failed = new Error("ImageWorkers closed");
    for (const p of this.#running.values()) p.reject(failed);
    for (const q of this.#queue) q.pending.reject(failed);
    this.#running.clear();
    this.#queue = [];
    this.#workers = [];
    this.#idle = [];
  }
}

/** A job's error as the calling thread sees it: InputError and the JPEG errors keep their class and message. */
function workerError(e: WireError): Error {
  if (e.name === "JpegCorrupt") return new JpegCorrupt(e.message);
  if (e.name === "JpegUnsupported") return new JpegUnsupported(e.message);
  if (e.kind === "Error") return new Error(`image worker: ${e.stack ?? `${e.name}: ${e.message}`}`);
  return fromWire(e);
}
