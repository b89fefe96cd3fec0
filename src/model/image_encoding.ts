// The vision encoder and projector over one request's tiles (extract_feature), recorded and submitted a piece at
// a time: InternVLModel.encodeImages runs every piece at once; a round joining a running batch runs one piece
// between the batch's steps (src/engine/joining_prefill.ts), so the batch's streams stall for a piece, not for
// the whole encoder (~1.1 s for 7 tiles of InternViT-6B on an H100).
import type { Gpu } from "../gpu/device.ts";
import { reshape, type Tensor } from "../gpu/tensor.ts";
import type { LanguageDims, ProjectorDims, VisionDims } from "./dims.ts";
import { type Tap, visionEmbeddings, visionLayers, type VisionWeights } from "./vision.ts";
import { projectorForward, type ProjectorWeights } from "./projector.ts";
import type { VisionScratchPool } from "./vision_scratch_pool.ts";
import { type DecodedImage, GpuTiling } from "./gpu_tiling.ts";

function positiveInteger(name: string, n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) {
    throw new Error(`ImageEncoding: ${name} ${n} must be a positive integer`);
  }
}

/** What an encoding needs of the model: its weights, dimensions and shared scratch. */
export interface ImageEncoderParts {
  gpu: Gpu;
  vision: VisionWeights;
  projector: ProjectorWeights;
  visionDims: VisionDims;
  projectorDims: ProjectorDims;
  scratch: VisionScratchPool;
  /** T.ToTensor + T.Normalize of each byte value (made on first use), for images tiled on the GPU. */
  normalization: () => Tensor;
}

export interface ImageEncodingOptions {
  /** Encoder layers a piece records (≥ 1); the first piece of each tile group also embeds the patches. */
  layersPerPiece: number;
  /**
   * Most encoder layers one submit holds (default: a piece): a longer piece goes to the GPU in several
   * submits, so the GPU starts on the first while the CPU records the rest.
   */
  layersPerSubmit?: number;
  /** Most tiles one encoder pass takes (InternVLModel.maxTilesPerPass); larger requests go in groups. */
  maxTilesPerPass: number;
  tap?: Tap;
}

/** Image embeddings produced a piece per `step` (an ImageEncoding, or embeddings already made). */
export interface ImagePieces {
  /** Whether every piece has been submitted. */
  readonly done: boolean;
  /** Submits the next piece, if any; returns `done`. */
  step(): boolean;
  /** The embeddings [N·256, D_llm], once `step` returned true: the caller owns them from here. */
  take(): Tensor;
  /** Frees what it holds; the embeddings too unless taken. */
  destroy(): void;
}

/** Embeddings already on the GPU (a kept copy) as pieces: done at once, no piece to submit. */
export function readyImagePieces(embeds: Tensor): ImagePieces {
  let taken = false;
  return {
    done: true,
    step: () => true,
    take: () => (taken = true, embeds),
    destroy: () => {
      if (!taken) embeds.buffer.destroy();
    },
  };
}

/**
 * Images → image embeddings [N·256, D_llm] on the GPU, N tiles in all, one piece per `step`. The images are
 * pixel values [N, 3, S, S] f32 (preprocessImage's) or decoded images whose tiling's resizes and
 * normalisation run on the GPU in the first piece. Tiles go through the encoder in groups of at most
 * maxTilesPerPass (41 tiles of InternViT-6B would need a 2.2 GB MLP activation, over the 2 GiB a storage
 * binding may hold; tiles are independent). Holds a vision scratch from the pool until done or destroyed.
 */
export class ImageEncoding implements ImagePieces {
  private readonly out: Tensor;
  private taken = false;
  private finished = false;
  private tiling: GpuTiling | null = null;
  private pixels: Tensor | null = null;
  private scratch: ReturnType<VisionScratchPool["take"]> | null;
  private readonly pieces: Generator<boolean, void, void>;

  constructor(
    private readonly parts: ImageEncoderParts,
    images: Float32Array | readonly DecodedImage[],
    readonly tiles: number,
    private readonly options: ImageEncodingOptions,
  ) {
    const S = parts.visionDims.imageSize;
    if (images instanceof Float32Array && images.length !== tiles * 3 * S * S) {
      throw new Error(`encodeImages: ${images.length} values are not ${tiles} tiles of 3×${S}×${S}`);
    }
    positiveInteger("layersPerPiece", options.layersPerPiece);
    positiveInteger("layersPerSubmit", options.layersPerSubmit ?? 1);
    const perPass = Math.max(1, Math.min(tiles, options.maxTilesPerPass));
    // Every group (and, from the pool, later encodings) reuses one scratch: building it took 41–47 ms of CPU
    // for 7 tiles on the H100 host, before the GPU could start.
    this.scratch = parts.scratch.take(perPass);
    try {
      if (!(images instanceof Float32Array)) {
        this.tiling = new GpuTiling(parts.gpu, images, S);
        if (this.tiling.tiles !== tiles) {
          throw new Error(`encodeImages: the images make ${this.tiling.tiles} tiles, not ${tiles}`);
        }
      }
      const q = (parts.visionDims.patchesPerSide / 2) ** 2;
      this.out = parts.gpu.createTensor("image_embeds", "f32", [tiles * q, parts.projectorDims.hidden]);
    } catch (e) {
      this.release();
      throw e;
    }
    this.pieces = this.record(images instanceof Float32Array ? images : null, perPass);
  }

  /** Whether every piece has been submitted (the output holds every tile's rows once the queue runs them). */
  get done(): boolean {
    return this.finished;
  }

  /** Records and submits the next piece; returns `done`. */
  step(): boolean {
    if (this.finished) return true;
    const piece = this.pieces.next();
    if (piece.done || piece.value) {
      this.finished = true;
      this.release();
    }
    return this.finished;
  }

  /** The embeddings, once done: the caller owns them from here (destroy them when done). */
  take(): Tensor {
    if (!this.finished) throw new Error("ImageEncoding: take() before the last piece");
    this.taken = true;
    return this.out;
  }

  /** Frees what it holds; the output too unless taken. Submitted work keeps what it uses. */
  destroy(): void {
    this.release();
    if (!this.taken) this.out.buffer.destroy();
  }

  private release(): void {
    this.pixels?.buffer.destroy();
    this.pixels = null;
    this.tiling?.destroy();
    this.tiling = null;
    if (this.scratch) this.parts.scratch.giveBack(this.scratch);
    this.scratch = null;
  }

  /** One `yield` per submitted piece: whether it was the last. */
  private *record(pixelValues: Float32Array | null, perPass: number): Generator<boolean, void, void> {
    const { gpu, visionDims: v, projectorDims } = this.parts;
    const S = v.imageSize, T = v.patchesPerSide ** 2 + 1, q = (v.patchesPerSide / 2) ** 2;
    const rowBytes = projectorDims.hidden * 4;
    const scratch = this.scratch!;
    const { layersPerPiece, tap } = this.options;
    for (let first = 0; first < this.tiles; first += perPass) {
      const n = Math.min(perPass, this.tiles - first);
      const vs = scratch.vision.forTiles(n), ps = scratch.projector.forTiles(n);
      for (let from = 0; from < v.layers; from += layersPerPiece) {
        const to = Math.min(v.layers, from + layersPerPiece);
        const r = gpu.recorder("vision");
        if (from === 0) {
          this.pixels = pixelValues
            ? gpu.uploadTensor(
              "vit.pixels",
              "f32",
              [n, 3, S, S],
              pixelValues.subarray(first * 3 * S * S, (first + n) * 3 * S * S),
            )
            : gpu.createTensor("vit.pixels", "f32", [n, 3, S, S]);
          if (this.tiling) {
            if (first === 0) this.tiling.recordRows(r);
            this.tiling.recordTiles(r, this.parts.normalization(), this.pixels, first);
          }
          visionEmbeddings(r, this.parts.vision, vs, this.pixels, tap);
        }
        const every = this.options.layersPerSubmit ?? layersPerPiece;
        for (let l = from; l < to; l += every) {
          if (l > from) r.submit();
          visionLayers(r, this.parts.vision, vs, l, Math.min(to, l + every), tap);
        }
        if (to === v.layers) {
          projectorForward(
            r,
            this.parts.projector,
            ps,
            reshape(vs.hidden, [n, T, v.hidden]),
            v,
            projectorDims,
          );
          tap?.("projector.out", -1, ps.out, r);
          r.copyAfter(ps.out, this.out.buffer, n * q * rowBytes, first * q * rowBytes);
        }
        r.submit();
        if (to === v.layers) {
          this.pixels!.buffer.destroy(); // freed once the submitted work no longer needs it
          this.pixels = null;
        }
        yield to === v.layers && first + n === this.tiles;
      }
    }
  }
}

/**
 * Vision encoder layers over a pass of `tiles` tiles with about the arithmetic of `promptTokens` prompt ids
 * through the language model (its linears, 2 FLOPs a weight a token, against each ViT layer's linears and
 * attention; both run at ~70 TFLOP/s on an H100, PERF.md v44): a joining round's encoder pieces then hold a
 * running batch up about as long as its prompt chunks. At least 1, at most every layer.
 */
export function visionLayersLike(
  v: VisionDims,
  l: LanguageDims,
  promptTokens: number,
  tiles: number,
): number {
  const lmWeights = l.layers *
    (l.hidden * (l.heads + 2 * l.kvHeads) * l.headDim + l.heads * l.headDim * l.hidden +
      3 * l.hidden * l.intermediate);
  const T = v.patchesPerSide ** 2 + 1;
  const perTileLayer = 2 * T * (4 * v.hidden * v.hidden + 2 * v.hidden * v.intermediate) +
    4 * T * T * v.hidden;
  const layers = Math.floor((2 * lmWeights * promptTokens) / (perTileLayer * tiles));
  return Math.max(1, Math.min(v.layers, layers));
}
