/**
 * One thread of src/image/image_workers.ts: runs a band of rows of one bicubic pass, or of a JPEG
 * reconstruction, over buffers that live in SharedArrayBuffers, so nothing is copied in or out; it answers
 * with the job's id (and the error, if any).
 */
import { parentPort } from "node:worker_threads";
import { horizontalRows, verticalRows } from "./bicubic_resize.ts";
import { mcuRowsNeeded, reconstructRows } from "./jpeg_reconstruct.ts";
import type { BandDone, BandJob } from "./image_workers.ts";

parentPort!.on("message", (job: BandJob) => {
  let reply: BandDone;
  try {
    if (job.kind === "jpeg") {
      const planes = job.planes.map((b) => new Int16Array(b)), out = new Uint8Array(job.out);
      const progress = new Int32Array(job.progress);
      for (let i = 0; i < job.bands.length; i += 2) {
        const [y0, y1] = [job.bands[i], job.bands[i + 1]];
        // Blocking is fine here: the calling thread is decoding the rows this band waits for.
        const needed = mcuRowsNeeded(job.frame, y1);
        for (let done = Atomics.load(progress, 0); done < needed; done = Atomics.load(progress, 0)) {
          if (done < 0) throw new Error("the JPEG's entropy decoding failed");
          Atomics.wait(progress, 0, done);
        }
        reconstructRows(job.frame, planes, y0, y1, out);
      }
    } else {
      const src = { width: job.srcWidth, height: job.srcHeight, data: new Uint8Array(job.src) };
      const out = { width: job.outWidth, height: job.outHeight, data: new Uint8Array(job.out) };
      if (job.pass === "horizontal") horizontalRows(src, out, job.y0, job.y1);
      else verticalRows(src, out, job.y0, job.y1);
    }
    reply = { id: job.id };
  } catch (err) {
    reply = { id: job.id, error: { message: (err as Error)?.stack ?? String(err) } };
  }
  parentPort!.postMessage(reply);
});
