// Where Deno's mapAsync waits: submits one long dispatch (tens of ms on llvmpipe, a few on a GPU), then
// times the mapAsync CALL and the await of its promise separately. Deno 2.9.6 polls the device until all
// submitted work has run inside the call (ext/webgpu/buffer.rs: device_poll(wait_indefinitely), then a
// 10 ms sleep before the promise settles), which is why generate() encodes its next step before it maps a
// readback and submits it right after (src/engine/generate.ts, docs/PERF.md v26).
//   deno run -A scripts/probe_map_async.ts [--rounds 200000] [--reps 3]
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "200000" }, reps: { type: "string", default: "3" } },
});
const rounds = Number(values.rounds), reps = Number(values.reps);
if (!(Number.isInteger(rounds) && rounds > 0 && Number.isInteger(reps) && reps > 0)) {
  throw new Error("--rounds and --reps take positive integers");
}

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = a[id.x];
  for (var i = 0u; i < ${rounds}u; i++) { x = x * 1.0000001 + 0.5; }
  a[id.x] = x;
}`;
const pipeline = device.createComputePipeline({
  layout: "auto",
  compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
});
const data = device.createBuffer({
  size: 4 * 64 * 64,
  usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
});
const readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const bindGroup = device.createBindGroup({
  layout: pipeline.getBindGroupLayout(0),
  entries: [{ binding: 0, resource: { buffer: data } }],
});
console.log(`adapter: ${adapter.info.description || adapter.info.vendor}; ${rounds} rounds a thread`);
for (let rep = 0; rep < reps; rep++) {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(64);
  pass.end();
  enc.copyBufferToBuffer(data, 0, readback, 0, 16);
  device.queue.submit([enc.finish()]);
  const t0 = performance.now();
  const mapped = readback.mapAsync(GPUMapMode.READ);
  const t1 = performance.now();
  await mapped;
  const t2 = performance.now();
  readback.unmap();
  console.log(
    `mapAsync call ${(t1 - t0).toFixed(1)} ms (blocking), then its await ${(t2 - t1).toFixed(1)} ms`,
  );
}
