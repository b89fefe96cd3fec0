import { type DType, Tensor, tensorByteLength } from "./tensor.ts";
import { kernelLine, kernelSource } from "./kernel_source.ts";
import { Recorder } from "./recorder.ts";
import type { DispatchCache } from "./dispatch_cache.ts";
import { probeHalfSubnormals } from "./half_subnormals.ts";

export interface GpuOptions {
  /** Ask for the high-performance adapter (the default) or the low-power one. */
  powerPreference?: GPUPowerPreference;
}

const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * The WebGPU device with the limits the model needs, a pipeline cache and error reporting.
 * GPU errors are captured with the label of the work that caused them and rethrown by `check()`
 * (called by every readback), so a validation error or device loss is never a silent wrong answer.
 */
export class Gpu {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private firstError: Error | null = null;
  private pendingChecks: Promise<void>[] = [];
  /**
   * Whether unpack2x16float keeps subnormal half floats (probed by `create`): the one-token matrix-vector
   * kernels' biased sums need it. Tests clear it to run the forms a flushing device would get.
   */
  halfSubnormals = false;

  private constructor(
    readonly device: GPUDevice,
    readonly adapterDescription: string,
    readonly isFallbackAdapter: boolean,
    readonly hasF16: boolean,
    readonly hasTimestamps: boolean,
  ) {
    device.lost.then((info) => {
      this.firstError ??= new Error(`GPU device lost (${info.reason}): ${info.message}`);
    });
    device.addEventListener("uncapturederror", (e) => {
      const err = (e as GPUUncapturedErrorEvent).error;
      this.firstError ??= new Error(`Uncaptured GPU error: ${err.message}`);
    });
  }

  static async create(options: GpuOptions = {}): Promise<Gpu> {
    if (!("gpu" in navigator) || !navigator.gpu) {
      throw new Error("This Deno has no navigator.gpu: use Deno 2.x (WebGPU is built in).");
    }
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
    if (!adapter) {
      throw new Error(
        "No WebGPU adapter found. Install your GPU's Vulkan driver, or on a CPU-only Debian/Ubuntu host " +
          "Mesa's software Vulkan driver (`apt-get install mesa-vulkan-drivers`, see scripts/ensure_webgpu.sh).",
      );
    }
    const hasF16 = adapter.features.has("shader-f16");
    const hasTimestamps = adapter.features.has("timestamp-query");
    const features: GPUFeatureName[] = [];
    if (hasF16) features.push("shader-f16");
    if (hasTimestamps) features.push("timestamp-query");
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      label: "internvl",
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      },
    });
    const info = adapter.info;
    const description = [info.vendor, info.architecture, info.device, info.description]
      .filter((s) => s).join(" ") || "unknown adapter";
    // isFallbackAdapter moved from the adapter to its info in newer specs; read whichever exists.
    const fallback = Boolean(
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    );
    const gpu = new Gpu(device, description, fallback, hasF16, hasTimestamps);
    gpu.halfSubnormals = await probeHalfSubnormals(gpu);
    return gpu;
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Largest tensor one storage binding can hold; bigger weights must be split by the caller. */
  get maxBindingBytes(): number {
    return this.device.limits.maxStorageBufferBindingSize;
  }

  createTensor(label: string, dtype: DType, shape: readonly number[]): Tensor {
    const size = tensorByteLength(dtype, shape);
    if (size > this.maxBindingBytes) {
      throw new Error(
        `Tensor ${label} [${
          shape.join(", ")
        }] ${dtype} needs ${size} bytes; one storage binding holds at most ` +
          `${this.maxBindingBytes} on this adapter: split it`,
      );
    }
    const buffer = this.device.createBuffer({ label, size: Math.max(16, alignTo(size, 4)), usage: storage });
    return new Tensor(buffer, dtype, shape, label);
  }

  /** Creates a tensor holding `data` (already packed for packed dtypes). */
  uploadTensor(label: string, dtype: DType, shape: readonly number[], data: ArrayBufferView): Tensor {
    const t = this.createTensor(label, dtype, shape);
    this.writeTensor(t, data);
    return t;
  }

  writeTensor(t: Tensor, data: ArrayBufferView, byteOffset = 0): void {
    if (byteOffset + data.byteLength > t.byteLength) {
      throw new Error(`writeTensor ${t.describe()}: ${data.byteLength} bytes at ${byteOffset} do not fit`);
    }
    // writeBuffer needs a multiple of 4 bytes.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded = bytes.byteLength % 4 === 0 ? bytes : copyPadded(bytes);
    // In pieces: each writeBuffer stages its data, and the 1.1 GB embedding table in one piece would
    // double the host memory it takes for the length of the upload.
    for (let at = 0; at < padded.byteLength; at += writeChunkBytes) {
      const piece = padded.subarray(at, Math.min(padded.byteLength, at + writeChunkBytes));
      this.device.queue.writeBuffer(t.buffer, t.byteOffset + byteOffset + at, piece);
    }
  }

  /** Copies a tensor back to the CPU (waits for all submitted work). */
  async readBytes(t: Tensor, byteLength = t.byteLength, byteOffset = 0): Promise<ArrayBuffer> {
    const size = alignTo(byteLength, 4);
    const staging = this.device.createBuffer({
      label: `${t.label}.readback`,
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder({ label: `${t.label}.readback` });
    enc.copyBufferToBuffer(t.buffer, t.byteOffset + byteOffset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      await this.check(`reading back ${t.label}`);
      throw e;
    }
    const out = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    await this.check(`reading back ${t.label}`);
    return out;
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(t));
  }

  async readI32(t: Tensor): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(t));
  }

  async readU32(t: Tensor): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(t));
  }

  /** The compute pipeline of kernels/<name>.wgsl (entry point `main`), built once and cached. */
  pipeline(name: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const key = name + JSON.stringify(constants);
    let p = this.pipelines.get(key);
    if (!p) {
      this.device.pushErrorScope("validation");
      const module = this.device.createShaderModule({ label: name, code: kernelSource(name) });
      p = this.device.createComputePipeline({
        label: name,
        layout: "auto",
        compute: { module, entryPoint: "main", constants },
      });
      // A WGSL error otherwise surfaces only as "ShaderModule … is invalid": attach the compiler's messages.
      const compiled = this.device.popErrorScope().then(async (err) => {
        if (!err) return null;
        const info = await module.getCompilationInfo().catch(() => null);
        const lines = info?.messages.map((m) => `${kernelLine(name, m.lineNum)}:${m.linePos} ${m.message}`);
        return { message: [err.message, ...(lines ?? [])].join("\n") } as GPUError;
      });
      this.watch(compiled, `building kernel ${name}`);
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** A recorder; give the same `cache` to a call site that records the same dispatches repeatedly. */
  recorder(label: string, cache?: DispatchCache): Recorder {
    return new Recorder(this, label, cache);
  }

  /** Records an error scope's outcome under `context` (used by Recorder.submit). */
  watch(scope: Promise<GPUError | null>, context: string): void {
    this.pendingChecks.push(scope.then((err) => {
      if (err) this.firstError ??= new Error(`GPU error while ${context}: ${err.message}`);
    }));
  }

  /** The first GPU error seen (validation, out of memory, device lost), or null. Later work cannot be trusted. */
  get fault(): string | null {
    return this.firstError?.message ?? null;
  }

  /** Throws the first GPU error seen so far, with the context it happened in. */
  async check(context = "running GPU work"): Promise<void> {
    const pending = this.pendingChecks;
    this.pendingChecks = [];
    await Promise.all(pending);
    if (this.firstError) {
      const e = this.firstError;
      throw new Error(`${e.message} (noticed while ${context})`, { cause: e });
    }
  }

  /** Resolves once all submitted work has finished. */
  async sync(context = "waiting for the GPU"): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    await this.check(context);
  }

  destroy(): void {
    this.device.destroy();
  }
}

/** Largest single queue.writeBuffer of an upload (a multiple of 4). */
const writeChunkBytes = 64 * 1024 * 1024;

export function alignTo(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function copyPadded(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(alignTo(bytes.byteLength, 4));
  out.set(bytes);
  return out;
}
