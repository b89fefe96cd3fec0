/**
 * One thread of src/image/image_workers.ts: runs a band of rows of one bicubic pass, a JPEG decode's
 * entropy job or band job (src/image/jpeg_decoder.ts), or a whole PNG or TIFF decode, over buffers that
 * live in SharedArrayBuffers, so nothing is copied in or out (a PNG's or TIFF's pixels are copied once into
 * the shared output); it answers with the job's id (and the error, if any: hostile input throws
 * here, and the worker lives on).
 */
import { parentPort } from "node:worker_threads";
import { horizontalRows, verticalRows } from "./bicubic_resize.ts";
import { runJpegBands, runJpegEntropy } from "./jpeg_decoder.ts";
import { decodePng } from "./png_decoder.ts";
import { decodeTiff } from "./tiff_decoder.ts";
import { toWire } from "../wire_error.ts";
import type { BandDone, BandJob } from "./image_workers.ts";

parentPort!.on("message", async (job: BandJob) => {
  let reply: BandDone;
  try {
    if (job.kind === "resize") {
      const src = { width: job.srcWidth, height: job.srcHeight, data: new Uint8Array(job.src) };
      const out = { width: job.outWidth, height: job.outHeight, data: new Uint8Array(job.out) };
      if (job.pass === "horizontal") horizontalRows(src, out, job.y0, job.y1);
      else verticalRows(src, out, job.y0, job.y1);
    } else if (job.kind === "file") {
      // Awaits only where node:zlib cannot inflate in one call (inflate.ts): rare, malformed data.
      const bytes = new Uint8Array(job.bytes);
      const img = job.format === "PNG"
        ? await decodePng(bytes)
        : await decodeTiff(bytes, job.width, job.height);
      new Uint8Array(job.out).set(img.data);
    } else if (job.kind === "jpeg_entropy") runJpegEntropy(job);
    else runJpegBands(job); // blocks until rows are decoded: its entropy job runs meanwhile
    reply = { id: job.id };
  } catch (err) {
    reply = { id: job.id, error: toWire(err) };
  }
  parentPort!.postMessage(reply);
});
