/**
 * Pillow-exact bicubic resizes on worker threads. A 12-megapixel photo took ~400 ms to decode and ~300 ms
 * to resize on one core (its 6-tile grid and its thumbnail, both from the full image;
 * `deno run -A scripts/bench_image.ts`), all of it on the thread that also serves HTTP and feeds the GPU.
 * Both passes of bicubic_resize.ts are independent per row (horizontal: per source row; vertical: per
 * output row), so each pass is cut into bands of rows, one job per band, and the bytes stay where they
 * are: images live in SharedArrayBuffers that every worker reads and writes. The result is byte-identical
 * to `bicubicResize` (the same integer sums per pixel, whatever thread computes them).
 * Decoding stays on the calling thread: as a job here, each await of the PNG inflate stream cost
 * milliseconds in a node worker, and a 12-megapixel PNG took 6.8 s instead of 0.77 (a JPEG 1.1 s instead
 * of 0.74; 2026-11-26, PERF.md v24). Only the JPEG's second half comes here: its entropy decoding is
 * serial and stays on the calling thread, the reconstruction of rows (IDCT, upsampling, colour;
 * src/image/jpeg_reconstruct.ts) is independent per band of rows and runs here, in place, from
 * coefficient planes in SharedArrayBuffers.
 * node:worker_threads rather than Web Workers: an idle worker is unref'd, so a pool never keeps a finished
 * script (scripts/chat.ts) alive (a live Web Worker kept one running forever); a worker holding a band is
 * ref'd, as Node's semantics want for pending work.
 */
import { Worker } from "node:worker_threads";
import { checkResizeTarget } from "./bicubic_resize.ts";
import type { CoefficientPlanes } from "./jpeg_entropy.ts";
import type { JpegFrame } from "./jpeg_markers.ts";
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
 * Bands of rows of a JPEG reconstruction (src/image/jpeg_reconstruct.ts reconstructRows), done in order,
 * each once the rows of MCUs it needs are decoded.
 */
export interface JpegBandJob {
  kind: "jpeg";
  id: number;
  frame: JpegFrame;
  /** planes[c]: [blockRows, blocksPerLine, 64] i16 of component c. */
  planes: SharedArrayBuffer[];
  out: SharedArrayBuffer; // [height, width, 3] u8
  /** progress: [1] i32, rows of MCUs decoded so far, −1 if decoding failed (jpeg_decoder.ts BandRunner). */
  progress: SharedArrayBuffer;
  /** bands: [n, 2] output rows y0, y1 (exclusive) of each band. */
  bands: number[];
}

export type BandJob = ResizeBandJob | JpegBandJob;

/** A worker's answer: the job's id, or what went wrong. */
export interface BandDone {
  id: number;
  error?: { message: string };
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
      if (done.error) p.reject(new Error(`image worker: ${done.error.message}`));
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
      this.#queue.push({ job, pending: { resolve, reject } });
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
   * `reconstructRows(frame, planes, 0, frame.height, out)` on the workers: the same bytes. planes, out and
   * progress must be whole SharedArrayBuffers (`decodeJpegRgbWith` makes them). The rows are cut into up
   * to 8 bands per worker (at least minBandRows rows each) dealt round-robin, so that while a baseline
   * file is still being entropy-decoded on this thread the workers follow it band by band, and only the
   * last band is left when it ends.
   */
  async reconstructJpeg(
    frame: JpegFrame,
    planes: CoefficientPlanes,
    out: Uint8Array,
    progress: Int32Array,
  ): Promise<void> {
    const shared = (a: Int16Array | Uint8Array | Int32Array) => {
      if (
        !(a.buffer instanceof SharedArrayBuffer) || a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength
      ) {
        throw new TypeError(
          "reconstructJpeg needs planes, output and progress that are whole SharedArrayBuffers",
        );
      }
      return a.buffer;
    };
    const rows = frame.height;
    const count = Math.max(1, Math.min(this.size * 8, Math.floor(rows / minBandRows)));
    const perWorker: number[][] = Array.from({ length: Math.min(this.size, count) }, () => []);
    for (let b = 0; b < count; b++) {
      perWorker[b % perWorker.length].push(
        Math.floor((rows * b) / count),
        Math.floor((rows * (b + 1)) / count),
      );
    }
    await Promise.all(perWorker.map((bands) =>
      this.#submit({
        kind: "jpeg",
        id: this.#nextId++,
        frame,
        planes: planes.map(shared),
        out: shared(out),
        progress: shared(progress),
        bands,
      })
    ));
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
