// Where the CPU time of `encodeImages` goes before the GPU starts (the cold time to first token waits on it):
// allocating the vision and projector scratch, uploading the pixels, recording the dispatches, and encoding +
// submitting them, each timed on its own for N tiles on the bench's random-weight model, three times. Then
// three encodeImages calls through the model's VisionScratchPool, as a server's image requests go: the first
// builds the scratch, the next ones reuse it (within the default 4 GiB budget).
//   deno run -A scripts/probe_encode_cpu.ts [--tiny] [--tiles 7] [--out FILE]
import { syntheticModelContext } from "../src/bench/bench_context.ts";
import { benchShapes } from "../src/bench/shapes.ts";
import * as sweep from "../src/bench/sweep.ts";
import { reshape } from "../src/gpu/tensor.ts";
import { projectorForward, ProjectorScratch } from "../src/model/projector.ts";
import { visionForward, VisionScratch } from "../src/model/vision.ts";
import { randomF32 } from "../src/ref/random.ts";

const { args, out: outArg } = sweep.parseArgs({
  tiles: { type: "string" },
  tiny: { type: "boolean", default: false },
}, 200);
const shapes = benchShapes(args.tiny ? "tiny" : "full");
const tiles = Number(args.tiles ?? 7);
const ctx = await syntheticModelContext(shapes, "llm-int8-prefill");
const { gpu } = ctx;
const m = await ctx.model();
const { vision, projector } = shapes;
const S = vision.imageSize, T = vision.patchesPerSide ** 2 + 1;
const pixelValues = randomF32(tiles * 3 * S * S, 5, -2, 2);

const runs: Record<string, number>[] = [];
for (let run = 0; run < 3; run++) {
  const t0 = performance.now();
  const vs = new VisionScratch(gpu, vision, tiles, m.model.matmul);
  const ps = new ProjectorScratch(gpu, vision, projector, tiles, m.model.matmul);
  const t1 = performance.now();
  const pixels = gpu.uploadTensor("probe.pixels", "f32", [tiles, 3, S, S], pixelValues);
  const t2 = performance.now();
  const r = gpu.recorder("probe.vision");
  visionForward(r, m.vision, vs, pixels);
  projectorForward(r, m.projector, ps, reshape(vs.hidden, [tiles, T, vision.hidden]), vision, projector);
  const t3 = performance.now();
  r.submit();
  const t4 = performance.now();
  await gpu.sync("probe.vision");
  const t5 = performance.now();
  vs.destroy();
  ps.destroy();
  pixels.buffer.destroy();
  const row = {
    alloc_ms: t1 - t0,
    upload_ms: t2 - t1,
    record_ms: t3 - t2,
    submit_ms: t4 - t3,
    gpu_wait_ms: t5 - t4,
  };
  runs.push(row);
  console.log(
    `run ${run}: ${Object.entries(row).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`,
  );
}

const pool = m.model.visionScratch;
pool.destroy(); // start empty, as a server's first image request does (a warm-up may have left 1 tile)
const requests: { encode_images_cpu_ms: number; reused: boolean }[] = [];
for (let i = 0; i < 3; i++) {
  const reuses = pool.reuses;
  const t0 = performance.now();
  const embeds = m.model.encodeImages(pixelValues, tiles);
  const cpu = performance.now() - t0;
  await gpu.sync("probe.encode_images");
  embeds.buffer.destroy();
  requests.push({ encode_images_cpu_ms: cpu, reused: pool.reuses > reuses });
  console.log(
    `request ${i}: encode_images_cpu_ms ${cpu.toFixed(1)}, pooled scratch reused ${pool.reuses > reuses}`,
  );
}
// The pool's part alone: a take that builds the scratch, then one that finds it kept.
pool.destroy();
const [build, reuse] = [0, 1].map(() => {
  const t0 = performance.now();
  const scratch = pool.take(tiles);
  const ms = performance.now() - t0;
  pool.giveBack(scratch);
  return ms;
});
console.log(`pool take: ${build.toFixed(2)} ms building the scratch, ${reuse.toFixed(3)} ms reusing it`);
pool.destroy();
await sweep.writeJson(outArg, "probe_encode_cpu.json", {
  adapter: gpu.adapterDescription,
  tiles,
  runs,
  vision_scratch_bytes: pool.budgetBytes,
  requests,
  pool_take_ms: { build, reuse },
});
