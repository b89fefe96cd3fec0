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
}
