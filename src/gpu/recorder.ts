import type { Gpu } from "./device.ts";
import type { Tensor } from "./tensor.ts";
import { type CachedDispatch, type DispatchCache, sameConstants } from "./dispatch_cache.ts";

/**
 * Uniform parameters of one dispatch: 4-byte scalars in the order of the kernel's `Params` struct.
 * Integers are written as u32/i32 by their sign; use `f32()` to mark a float.
 */
export type Param = number | { f32: number };
export const f32 = (v: number): Param => ({ f32: v });

interface Dispatch {
  kernel: string;
  constants: Record<string, number>;
  params: Param[];
  bindings: Tensor[];
  workgroups: [number, number, number];
  label: string;
}

/**
 * Whether a cached dispatch is `d`: the same kernel, constants, params slot and bound buffers and ranges, in
 * order.
 */
function sameDispatch(hit: CachedDispatch, d: Dispatch, offset: number, slot: number): boolean {
  if (hit.kernel !== d.kernel || hit.offset !== offset || hit.slot !== slot) return false;
  if (hit.buffers.length !== d.bindings.length) return false;
  for (let j = 0; j < d.bindings.length; j++) {
    const t = d.bindings[j];
    if (hit.buffers[j] !== t.buffer || hit.ranges[j] !== rangeOf(t)) return false;
  }
  return sameConstants(hit.constants, d.constants);
}

/** A binding's range: the whole buffer (0) or a view's (`rowsView`), as `byteOffset:byteLength`. */
function rangeOf(t: Tensor): string | 0 {
  return t.byteOffset === 0 ? 0 : `${t.byteOffset}:${t.byteLength}`;
}

/** A tensor's storage binding: the whole buffer, or only a view's range. */
function bufferBinding(t: Tensor): GPUBufferBinding {
  return t.byteOffset === 0
    ? { buffer: t.buffer }
    : { buffer: t.buffer, offset: t.byteOffset, size: t.byteLength };
}

/** Uniform offsets must be multiples of this (the WebGPU default minUniformBufferOffsetAlignment). */
const uniformAlign = 256;

/**
 * Collects dispatches and submits them in ONE compute pass with ONE queue submit: Deno charges ~11 µs
 * per pass and ~11 ms per wait, so work is batched and waited on only when its result is read.
 * Kernel convention: binding 0 is `var<uniform> p: Params`, bindings 1.. are the tensors in order.
 */
export class Recorder {
  private readonly dispatches: Dispatch[] = [];
  private readonly copies: {
    src: Tensor;
    dst: GPUBuffer;
    bytes: number;
    dstOffset: number;
    srcOffset: number;
  }[] = [];

  /** With a cache, bind groups and the params arena of a repeated sequence of dispatches are reused. */
  constructor(private readonly gpu: Gpu, readonly label: string, private readonly cache?: DispatchCache) {}

  /** Whether the work runs on a fallback (CPU) adapter such as Mesa's llvmpipe: some ops take other forms. */
  get fallbackAdapter(): boolean {
    return this.gpu.isFallbackAdapter;
  }

  /** Whether the device keeps subnormal half floats (Gpu.halfSubnormals): biased sums need it. */
  get halfSubnormals(): boolean {
    return this.gpu.halfSubnormals;
  }

  get size(): number {
    return this.dispatches.length;
  }

  /** The kernel, bound tensors, override constants and grid of each recorded dispatch, in order (tests). */
  get recorded(): {
    kernel: string;
    bindings: readonly Tensor[];
    constants: Readonly<Record<string, number>>;
    workgroups: readonly number[];
  }[] {
    return this.dispatches.map((d) => ({
      kernel: d.kernel,
      bindings: d.bindings,
      constants: d.constants,
      workgroups: d.workgroups,
    }));
  }

  dispatch(
    kernel: string,
    opts: {
      bindings: Tensor[];
      params?: Param[];
      workgroups: number | [number, number?, number?];
      constants?: Record<string, number>;
      label?: string;
    },
  ): void {
    const wg = typeof opts.workgroups === "number" ? [opts.workgroups] : opts.workgroups;
    const workgroups: [number, number, number] = [wg[0] ?? 1, wg[1] ?? 1, wg[2] ?? 1];
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((n) => !Number.isInteger(n) || n < 1 || n > max)) {
      throw new Error(`${opts.label ?? kernel}: bad workgroup grid [${workgroups}] (each 1..${max})`);
    }
    this.dispatches.push({
      kernel,
      constants: opts.constants ?? {},
      params: opts.params ?? [],
      bindings: opts.bindings,
      workgroups,
      label: opts.label ?? kernel,
    });
  }

  /** Copies `src` (from byte `srcOffset`) into `dst` after the compute pass (e.g. into a mappable buffer). */
  copyAfter(src: Tensor, dst: GPUBuffer, bytes = src.byteLength, dstOffset = 0, srcOffset = 0): void {
    this.copies.push({ src, dst, bytes, dstOffset, srcOffset });
  }

  /** Caches for the next encodes, one each (see useCaches), before the recorder's own. */
  private readonly queuedCaches: DispatchCache[] = [];

  /**
   * The next `caches.length` encodes (submits) take these caches, one each in order, then the recorder's own
   * again: a pass recorded into a caller's recorder brings the caches of its parts (a prompt pass kept
   * between rounds, src/model/prompt_scratch_pool.ts). A cache's arena is rewritten at each submit, so its
   * owner must not encode with it elsewhere before this recorder's encodes have been submitted.
   */
  useCaches(caches: readonly DispatchCache[]): void {
    this.queuedCaches.push(...caches);
  }

  /** Work encoded by `submit` while submits are held (see holdSubmits), in order. */
  private held: (() => void)[] | null = null;

  /** Encodes everything recorded into one pass (plus trailing copies) and submits it; does not wait. */
  submit(): void {
    const submit = this.encode();
    if (this.held) this.held.push(submit);
    else submit();
  }

  /** Whether `submit` holds the work (holdSubmits) instead of submitting it. */
  get holding(): boolean {
    return this.held !== null;
  }

  /**
   * From now on `submit` encodes but holds the work (submit the last part too); the returned function submits
   * what was held, in order. A pass can then be recorded while the GPU is busy and submitted at its turn.
   * Queue writes made while recording (tensor uploads) are not held: they run before the next submit, so they
   * must only touch buffers that work already submitted no longer reads.
   */
  holdSubmits(): () => void {
    const held: (() => void)[] = this.held = [];
    return () => {
      if (this.held === held) this.held = null;
      for (const submit of held) submit();
    };
  }

  /**
   * Encodes everything recorded into one pass (plus trailing copies) and returns the function that submits
   * it: the CPU-heavy part (bind groups, the pass) can then run while the GPU is busy, and the submit come
   * later (generate() encodes a decode step ahead of a readback wait). The uniform parameters are written
   * at submit, so a shared params arena stays in queue order.
   *
   * `firstPart`: the first N dispatches go in a command buffer of their own, submitted before the rest, so
   * an idle GPU starts on them while the runtime still takes in the rest (a queue submit of InternLM2-20B's
   * 532-dispatch decode step held the thread 0.23–0.35 ms on an H200 host, that of its first 24 dispatches
   * 0.11–0.14 ms; docs/PERF.md v73). Two passes then: the barrier between them is one a dispatch boundary
   * would have had anyway.
   */
  encode(opts: { firstPart?: number } = {}): () => void {
    if (this.dispatches.length === 0 && this.copies.length === 0) return () => {};
    const firstPart = opts.firstPart && opts.firstPart < this.dispatches.length ? opts.firstPart : 0;
    const { device } = this.gpu;
    // Each dispatch's params slot (bytes, a multiple of 16) and its offset in the arena.
    const slots = this.dispatches.map((d) =>
      Math.max(16, Math.ceil(Math.max(1, d.params.length) * 4 / 16) * 16)
    );
    let total = 0;
    const offsets = slots.map((size) => {
      const at = total;
      total += Math.ceil(size / uniformAlign) * uniformAlign;
      return at;
    });
    const data = new ArrayBuffer(Math.max(16, total));
    const view = new DataView(data);
    this.dispatches.forEach((d, i) => {
      d.params.forEach((p, j) => {
        const at = offsets[i] + 4 * j;
        if (typeof p === "number") {
          if (!Number.isInteger(p)) {
            throw new Error(`${d.label}: param ${j} = ${p} is not an integer; wrap floats in f32()`);
          }
          if (p < 0) view.setInt32(at, p, true);
          else view.setUint32(at, p, true);
        } else view.setFloat32(at, p.f32, true);
      });
    });
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const cache = this.queuedCaches.shift() ?? this.cache;
    const uniforms = cache ? cache.arena(device, Math.max(16, total)) : device.createBuffer({
      label: `${this.label}.params`,
      size: Math.max(16, total),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const firstEnc = firstPart > 0 ? device.createCommandEncoder({ label: `${this.label}.first` }) : null;
    const firstPass = firstEnc ? firstEnc.beginComputePass({ label: `${this.label}.first` }) : null;
    const enc = device.createCommandEncoder({ label: this.label });
    // Copies alone need no compute pass (an empty one would still take the timer's timestamps).
    const restPass = this.dispatches.length > 0 ? enc.beginComputePass({ label: this.label }) : null;
    this.dispatches.forEach((d, i) => {
      const pass = i < firstPart ? firstPass : restPass;
      let pipeline: GPUComputePipeline;
      let bindGroup: GPUBindGroup;
      const hit = cache?.entries[i];
      if (cache && hit && sameDispatch(hit, d, offsets[i], slots[i])) {
        pipeline = hit.pipeline;
        bindGroup = hit.bindGroup;
        cache.hits++;
      } else {
        pipeline = this.gpu.pipeline(d.kernel, d.constants);
        bindGroup = device.createBindGroup({
          label: d.label,
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: uniforms, offset: offsets[i], size: slots[i] } },
            ...d.bindings.map((t, j) => ({ binding: j + 1, resource: bufferBinding(t) })),
          ],
        });
        if (cache) {
          cache.entries[i] = {
            kernel: d.kernel,
            constants: { ...d.constants }, // a copy: the caller's object could change after this submit
            offset: offsets[i],
            slot: slots[i],
            buffers: d.bindings.map((t) => t.buffer),
            ranges: d.bindings.map(rangeOf),
            pipeline,
            bindGroup,
          };
          cache.misses++;
        }
      }
      pass!.setPipeline(pipeline);
      pass!.setBindGroup(0, bindGroup);
      pass!.dispatchWorkgroups(...d.workgroups);
    });
    firstPass?.end();
    const firstCommands = firstEnc?.finish();
    restPass?.end();
    for (const c of this.copies) {
      enc.copyBufferToBuffer(c.src.buffer, c.src.byteOffset + c.srcOffset, c.dst, c.dstOffset, c.bytes);
    }
    const commands = enc.finish();
    const what = `${this.label} (${this.dispatches.slice(0, 8).map((d) => d.label).join(", ")}` +
      `${this.dispatches.length > 8 ? ", …" : ""})`;
    this.gpu.watch(device.popErrorScope(), `recording ${what}`);
    this.gpu.watch(device.popErrorScope(), `allocating for ${what}`);
    this.dispatches.length = 0;
    this.copies.length = 0;
    return () => {
      device.pushErrorScope("out-of-memory");
      device.pushErrorScope("validation");
      device.queue.writeBuffer(uniforms, 0, data);
      if (firstCommands) device.queue.submit([firstCommands]);
      device.queue.submit([commands]);
      if (!cache) uniforms.destroy(); // freed once the submitted work no longer needs it
      this.gpu.watch(device.popErrorScope(), `running ${what}`);
      this.gpu.watch(device.popErrorScope(), `allocating for ${what}`);
    };
  }
}
