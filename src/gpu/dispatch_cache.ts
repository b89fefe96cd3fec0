/**
 * What one call site (e.g. a decode step) reuses from one submit to the next: its uniform arena and the
 * bind group of every dispatch whose kernel, constants, params slot and bound buffers are unchanged.
 * Building ~800 bind groups per token cost ~37 ms of CPU per decode step on an H200 (bench v1), three times
 * the GPU time; with the cache a repeated step only rewrites its params (one writeBuffer) and re-encodes.
 *
 * The arena is overwritten by each submit while earlier submits may still run: that is safe because
 * queue.writeBuffer executes in queue order, after every command buffer submitted before it.
 */
export interface CachedDispatch {
  kernel: string;
  constants: Record<string, number>;
  /** The dispatch's params in the arena: byte offset and slot size. */
  offset: number;
  slot: number;
  buffers: GPUBuffer[];
  /** Each binding's range: 0 for the whole buffer, else a view's `byteOffset:byteLength`. */
  ranges: (string | 0)[];
  /** `Gpu.pipeline(kernel, constants)`, kept so a hit needs no lookup (its key is a JSON string). */
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
}

/** Whether two override-constant sets hold the same names and values (no strings built: a hit's test). */
export function sameConstants(a: Record<string, number>, b: Record<string, number>): boolean {
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

export class DispatchCache {
  uniforms: GPUBuffer | null = null;
  entries: (CachedDispatch | undefined)[] = [];
  hits = 0;
  misses = 0;

  constructor(readonly label: string) {}

  /** The arena, grown (and every cached bind group dropped) when `bytes` no longer fits. */
  arena(device: GPUDevice, bytes: number): GPUBuffer {
    if (!this.uniforms || this.uniforms.size < bytes) {
      this.uniforms?.destroy();
      this.uniforms = device.createBuffer({
        label: `${this.label}.params`,
        size: bytes,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.entries = [];
    }
    return this.uniforms;
  }

  destroy(): void {
    this.uniforms?.destroy();
    this.uniforms = null;
    this.entries = [];
  }
}
