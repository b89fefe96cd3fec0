// What an image request costs on the CPU before the GPU sees it: decoding, the dynamic tiling's two
// bicubic resizes (grid and thumbnail, both from the full image) and the normalisation, for synthetic
// photos (1080p and a 12-megapixel phone photo, JPEG quality 90 and PNG), on the main thread and through
// ImageWorkers pools of 1, 2, 4, 8 workers (no more than the cores). The bench's TTFT starts from pixel values,
// so this time comes on top of it. For the JPEGs it also times the decode alone three ways: imagescript's wasm
// decoder (the old path, now the fallback), ours on the calling thread, ours on each pool
// (ImageWorkers.decodeJpeg: entropy decoding and row reconstruction on workers), and the calling thread's
// longest stall during a decode: the largest gap between ticks of a 1 ms interval (a serving thread's
// GPU submissions would wait that long; an idle thread shows ~1–2 ms).
//   deno run -A scripts/bench_image.ts [--quick] [--jpeg-only] [--out image.json]
// --quick: one 640×480 JPEG, one repetition (a smoke run). --jpeg-only: the JPEG decode lines alone.
import * as sweep from "../src/bench/sweep.ts";
import { syntheticPhoto } from "../src/bench/synthetic_photo.ts";
import { median } from "../src/bench/gpu_timer.ts";
import { medianWallMs } from "../src/bench/util.ts";
import { decodeImage } from "../src/image/decode_image.ts";
import { decodeJpegWithImagescript } from "../src/image/imagescript_jpeg.ts";
import { preprocessImage } from "../src/image/pixel_values.ts";
import { ImageWorkers } from "../src/image/image_workers.ts";

const { quick, out, args } = sweep.parseArgs({ "jpeg-only": { type: "boolean" } });
const jpegOnly = args["jpeg-only"] ?? false;
const reps = quick ? 1 : 5;
const cores = navigator.hardwareConcurrency || 1;
const poolSizes = [1, 2, 4, 8].filter((n) => n <= Math.max(1, cores));

const sizes: [number, number][] = quick ? [[640, 480]] : [[1920, 1080], [4032, 3024]];
const pools = new Map(poolSizes.map((n) => [n, new ImageWorkers(n)]));
const options = { maxNum: 6, maxPixels: 50_000_000 };
const results: Record<string, unknown>[] = [];
console.log(`cpu: ${cores} cores; median of ${reps}; max_num 6`);
try {
  for (const [w, h] of sizes) {
    const img = syntheticPhoto(w, h);
    const files: [string, Uint8Array][] = [[`JPEG ${w}×${h}`, await img.encodeJPEG(90)]];
    if (!quick && !jpegOnly) files.push([`PNG ${w}×${h}`, await img.encode(1)]);
    for (const [name, bytes] of files) {
      if (jpegOnly) {
        const jpeg = await jpegDecodeMs(bytes, w, h);
        results.push({ image: name, bytes: bytes.length, jpeg_decode_ms: jpeg });
        logJpeg(name, jpeg);
        continue;
      }
      const first = await preprocessImage(bytes, options);
      const decodeMs = await medianWallMs(reps, () => decodeImage(bytes, options));
      const jpeg = name.startsWith("JPEG") ? await jpegDecodeMs(bytes, w, h) : null;
      const mainMs = await medianWallMs(reps, () => preprocessImage(bytes, options));
      const poolMs: Record<string, number> = {};
      for (const [n, pool] of pools) {
        poolMs[n] = await medianWallMs(reps, () => preprocessImage(bytes, options, pool));
      }
      const row = {
        image: name,
        bytes: bytes.length,
        grid: first.grid,
        tiles: first.tiles,
        decode_ms: +decodeMs.toFixed(1),
        ...(jpeg ? { jpeg_decode_ms: jpeg } : {}),
        preprocess_ms_main_thread: +mainMs.toFixed(1),
        preprocess_ms_workers: Object.fromEntries(
          Object.entries(poolMs).map(([k, v]) => [k, +v.toFixed(1)]),
        ),
      };
      results.push(row);
      const pooled = Object.entries(poolMs).map(([n, ms]) => `${n} workers ${ms.toFixed(0)}`).join(", ");
      if (jpeg) logJpeg(name, jpeg);
      console.log(
        `${name.padEnd(16)} ${(bytes.length / 1e6).toFixed(1).padStart(5)} MB, ${first.tiles} tiles: ` +
          `decode ${decodeMs.toFixed(0)} ms; preprocess main thread ${mainMs.toFixed(0)} ms; ${pooled} ms`,
      );
    }
  }
} finally {
  for (const pool of pools.values()) pool.close();
}
type JpegTimes = Awaited<ReturnType<typeof jpegDecodeMs>>;

/**
 * Decode-only medians of one JPEG: imagescript, ours on this thread, ours with each pool; and the median
 * over `reps` decodes of the calling thread's longest stall, on this thread and with each pool.
 */
async function jpegDecodeMs(bytes: Uint8Array, w: number, h: number) {
  const round = (ms: number) => +ms.toFixed(1);
  const imagescript = round(await medianWallMs(reps, () => decodeJpegWithImagescript(bytes, w, h)));
  const ours = round(await medianWallMs(reps, () => decodeImage(bytes, options)));
  const oursWorkers: Record<string, number> = {};
  const stallWorkers: Record<string, number> = {};
  for (const [n, pool] of pools) {
    oursWorkers[n] = round(await medianWallMs(reps, () => decodeImage(bytes, options, pool)));
    stallWorkers[n] = round(await medianStallMs(() => decodeImage(bytes, options, pool)));
  }
  const stallMain = round(await medianStallMs(() => decodeImage(bytes, options)));
  return {
    imagescript,
    ours_main_thread: ours,
    ours_workers: oursWorkers,
    stall_ms_main_thread: stallMain,
    stall_ms_workers: stallWorkers,
  };
}

/**
 * The calling thread's longest stall while `f` runs: the largest gap between ticks of a 1 ms interval
 * (the run's end counts as a tick), median over `reps` runs. Also the idle gap: a probe with nothing to do.
 */
async function medianStallMs(f: () => Promise<unknown>): Promise<number> {
  const stalls: number[] = [];
  for (let i = 0; i < reps; i++) {
    let last = performance.now(), longest = 0;
    const tick = () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    };
    const probe = setInterval(tick, 1);
    try {
      await f();
      tick();
    } finally {
      clearInterval(probe);
    }
    stalls.push(longest);
  }
  return median(stalls);
}

function logJpeg(name: string, jpeg: JpegTimes): void {
  const perPool = (r: Record<string, number>) =>
    Object.entries(r).map(([n, ms]) => `${n} workers ${ms}`).join(", ");
  console.log(
    `${name.padEnd(16)} decode only: imagescript ${jpeg.imagescript} ms; ours main thread ` +
      `${jpeg.ours_main_thread} ms; ours ${perPool(jpeg.ours_workers)} ms`,
  );
  console.log(
    `${name.padEnd(16)} calling thread's longest stall during a decode: main thread ` +
      `${jpeg.stall_ms_main_thread} ms; ${perPool(jpeg.stall_ms_workers)} ms`,
  );
}

if (out) {
  await Deno.writeTextFile(
    out,
    JSON.stringify({ cores, reps, date: new Date().toISOString(), results }, null, 2),
  );
  console.log(`wrote ${out}`);
}
