// A dispatch that keeps the GPU busy for a chosen number of rounds (a chain of multiply-adds in each of 4096
// threads), for the probes of how Deno waits for GPU work (scripts/probe_map_async.ts,
// scripts/probe_first_readback.ts). Each length has its own uniform, written once, so that submitting a
// dispatch writes nothing.
const code = `struct P { rounds: u32 }
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = a[id.x];
  for (var i = 0u; i < p.rounds; i++) { x = x * 1.0000001 + 0.5; }
  a[id.x] = x;
}`;

export class BusyDispatch {
  private readonly pipeline: GPUComputePipeline;
  private readonly data: GPUBuffer;
  private readonly lengths = new Map<number, GPUBindGroup>();

  constructor(private readonly device: GPUDevice) {
    this.pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    this.data = device.createBuffer({
      size: 4 * 64 * 64,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** One dispatch of `rounds` rounds, then (when given) a copy of 16 bytes of its output into `into`. */
  encode(rounds: number, into?: GPUBuffer): GPUCommandBuffer {
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup(rounds));
    pass.dispatchWorkgroups(64);
    pass.end();
    if (into) enc.copyBufferToBuffer(this.data, 0, into, 0, 16);
    return enc.finish();
  }

  private bindGroup(rounds: number): GPUBindGroup {
    let g = this.lengths.get(rounds);
    if (!g) {
      const u = this.device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.device.queue.writeBuffer(u, 0, new Uint32Array([rounds, 0, 0, 0]));
      g = this.device.createBindGroup({
        layout: this.pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: this.data } }, { binding: 1, resource: { buffer: u } }],
      });
      this.lengths.set(rounds, g);
    }
    return g;
  }
}
