import type { Gpu } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type HostLinear, type LinearWeights, uploadLinear } from "../ops/linear.ts";

/** What the model's weight loaders need from a checkpoint (src/weights implements it). */
export interface WeightSource {
  /** A bf16/f16/f32 tensor as f32; throws when absent or when its shape is not `shape`. */
  readFloat32(name: string, shape: readonly number[]): Promise<Float32Array>;
  /** Raw little-endian bytes of a tensor whose shape must be `shape`. */
  readRaw(name: string, shape: readonly number[]): Promise<{ dtype: string; bytes: Uint8Array }>;
  /** `prefix.weight` (+ `prefix.SCB` for bitsandbytes int8, `prefix.bias` when present). */
  readLinear(prefix: string, outFeatures: number, inFeatures: number): Promise<HostLinear>;
}

/** Uploads helpers shared by the vision, projector and language weight loaders. */
export class WeightUploader {
  constructor(readonly gpu: Gpu, readonly source: WeightSource) {}

  async vector(name: string, shape: readonly number[], label = name): Promise<Tensor> {
    return this.gpu.uploadTensor(label, "f32", shape, await this.source.readFloat32(name, shape));
  }

  async linear(
    prefix: string,
    outFeatures: number,
    inFeatures: number,
    label = prefix,
  ): Promise<LinearWeights> {
    return uploadLinear(this.gpu, label, await this.source.readLinear(prefix, outFeatures, inFeatures));
  }

  /**
   * Several Linears of the same input, stacked row-wise into one ([A; B; …], outFeatures rows each), so one
   * matrix-vector pass streams them all (InternLM2's w1 and w3: one 32768-row matrix instead of two).
   */
  async linearStack(
    prefixes: readonly string[],
    outFeatures: number,
    inFeatures: number,
    label = prefixes.join("+"),
  ): Promise<LinearWeights> {
    const parts: HostLinear[] = [];
    for (const p of prefixes) parts.push(await this.source.readLinear(p, outFeatures, inFeatures));
    const kind = parts[0].kind;
    if (parts.some((p) => p.kind !== kind)) throw new Error(`${label}: cannot stack int8 and float Linears`);
    const rows = outFeatures * prefixes.length;
    const weight = kind === "int8" ? new Int8Array(rows * inFeatures) : new Float32Array(rows * inFeatures);
    parts.forEach((p, i) => weight.set(p.weight, i * outFeatures * inFeatures));
    const stack = (get: (p: HostLinear) => Float32Array | null | undefined) => {
      if (parts.every((p) => !get(p))) return null;
      const out = new Float32Array(rows);
      parts.forEach((p, i) => out.set(get(p) ?? new Float32Array(outFeatures), i * outFeatures));
      return out;
    };
    return uploadLinear(this.gpu, label, {
      kind,
      weight,
      scb: stack((p) => p.scb) ?? undefined,
      bias: stack((p) => p.bias),
      outFeatures: rows,
      inFeatures,
    });
  }
}
