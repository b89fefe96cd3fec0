// The card's achievable memory bandwidth, measured in the same run as everything else: a WGSL copy kernel
// (one vec4<u32> per thread, the fastest simple kernel on H200 per shared/GPU_HOST.md — 4042 GB/s against
// PyTorch's 4253). Kernel GB/s figures in the report are fractions of this number.
// The kernel lives here rather than in kernels/ because it is a measuring instrument, not part of the model.
import type { Gpu } from "../gpu/device.ts";
import { type GpuTimer, median, nsToMs } from "./gpu_timer.ts";

const copyWgsl = /* wgsl */ `
struct Params { n: u32, groups_per_row: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * p.groups_per_row + wg.x) * 256u + li;
  if (i < p.n) { dst[i] = src[i]; }
}`;

export interface CopyResult {
  GBps: number;
  bytes: number;
  dispatchesPerPass: number;
  passes: number;
  method: string;
  /** GPU-clock span of the timed passes over the wall time around them (≤ 1; near 1 for long runs). */
  gpuSpanOverWall?: number;
}

/** Copies `bytes` (capped by the binding limit) `dispatchesPerPass` times per pass; GB/s counts read + write. */
export async function measureCopyBandwidth(
  gpu: Gpu,
  timer: GpuTimer,
  bytes: number,
  opts: { dispatchesPerPass?: number; passes?: number } = {},
): Promise<CopyResult> {
  const device = gpu.device;
  const size = Math.floor(Math.min(bytes, gpu.maxBindingBytes) / 16) * 16;
  const n = size / 16;
  const groups = Math.ceil(n / 256);
  const groupsPerRow = Math.min(groups, 65535);
  const usage = GPUBufferUsage.STORAGE;
  const src = device.createBuffer({ label: "bench.copy.src", size, usage });
  const dst = device.createBuffer({ label: "bench.copy.dst", size, usage });
  const params = device.createBuffer({
    label: "bench.copy.params",
    size: 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, new Uint32Array([n, groupsPerRow, 0, 0]));
  const module = device.createShaderModule({ label: "bench.copy", code: copyWgsl });
  const pipeline = device.createComputePipeline({
    label: "bench.copy",
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const bindGroup = device.createBindGroup({
    label: "bench.copy",
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: { buffer: src } },
      { binding: 2, resource: { buffer: dst } },
    ],
  });
  const reps = opts.dispatchesPerPass ?? 20, passes = opts.passes ?? 5;
  const runPass = () => {
    const enc = device.createCommandEncoder({ label: "bench.copy" });
    const pass = enc.beginComputePass({ label: "bench.copy" });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(groupsPerRow, Math.ceil(groups / groupsPerRow));
    pass.end();
    device.queue.submit([enc.finish()]);
  };
  try {
    runPass(); // warm-up: first touch of the buffers, pipeline creation
    await gpu.sync("warming up the copy kernel");
    const moved = 2 * size * reps;
    if (timer.hasTimestamps) {
      timer.start("copy");
      const t0 = performance.now();
      for (let i = 0; i < passes; i++) runPass();
      const stamps = await timer.collect();
      const wallMs = performance.now() - t0;
      const GBps = median(stamps.map((s) => moved / (nsToMs(s.endNs - s.beginNs) * 1e6)));
      // Sanity check of the timestamp unit (WebGPU promises ns; a backend returning raw ticks would show
      // up here): the GPU span can never exceed the wall time around it, and with ≥ 100 ms of work the
      // ~11 ms completion poll keeps the ratio near 1.
      const spanMs = nsToMs(stamps[stamps.length - 1].endNs - stamps[0].beginNs);
      return {
        GBps,
        bytes: size,
        dispatchesPerPass: reps,
        passes,
        method: timer.method,
        gpuSpanOverWall: spanMs / wallMs,
      };
    }
    const t0 = performance.now();
    for (let i = 0; i < passes; i++) runPass();
    await gpu.sync("timing the copy kernel");
    const ms = performance.now() - t0;
    return {
      GBps: (moved * passes) / (ms * 1e6),
      bytes: size,
      dispatchesPerPass: reps,
      passes,
      method: timer.method,
    };
  } finally {
    src.destroy();
    dst.destroy();
    params.destroy();
  }
}
