// Does resolving timestamp queries that no submitted pass wrote return? A fresh query set; one compute pass
// stamping queries 0–1 is submitted, a second stamping 2–3 is encoded and never submitted (as generate()
// leaves its next step when a generation pauses), then queries 0–3 are resolved and read. On an H100 a
// bench join section that did this never returned (docs/PERF.md v46); GpuTimer.collect now writes such
// queries with an empty pass first (--fill does the same here).
//   deno run -A scripts/probe_unwritten_queries.ts [--fill]
const fill = Deno.args.includes("--fill");
const adapter = await navigator.gpu.requestAdapter();
if (!adapter?.features.has("timestamp-query")) {
  console.log("no timestamp-query on this adapter");
  Deno.exit(0);
}
const device = await adapter.requestDevice({ requiredFeatures: ["timestamp-query"] });
const querySet = device.createQuerySet({ type: "timestamp", count: 4 });
const stamped = (first: number) => {
  const enc = device.createCommandEncoder();
  enc.beginComputePass({
    timestampWrites: { querySet, beginningOfPassWriteIndex: first, endOfPassWriteIndex: first + 1 },
  }).end();
  return enc.finish();
};
device.queue.submit([stamped(0)]);
stamped(2); // never submitted
const resolve = device.createBuffer({
  size: 32,
  usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
});
const read = device.createBuffer({ size: 32, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const enc = device.createCommandEncoder();
if (fill) {
  enc.beginComputePass({
    timestampWrites: { querySet, beginningOfPassWriteIndex: 2, endOfPassWriteIndex: 3 },
  }).end();
}
enc.resolveQuerySet(querySet, 0, 4, resolve, 0);
enc.copyBufferToBuffer(resolve, 0, read, 0, 32);
device.queue.submit([enc.finish()]);
const t0 = performance.now();
console.log(
  `${adapter.info.description || adapter.info.device}: resolving 4 queries, 2 unwritten${
    fill ? " (filled)" : ""
  }…`,
);
await read.mapAsync(GPUMapMode.READ);
const ticks = new BigUint64Array(read.getMappedRange().slice(0));
console.log(`returned after ${(performance.now() - t0).toFixed(1)} ms: ${[...ticks].join(", ")}`);
Deno.exit(0);
