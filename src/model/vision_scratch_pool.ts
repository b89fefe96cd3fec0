// The vision encoder's and projector's scratch, kept between image requests under a byte budget
// (VISION_SCRATCH_BYTES). Building it took 41–47 ms of CPU for 7 tiles of InternViT-6B on the H100 host
// (scripts/probe_encode_cpu.ts, PERF.md v22), all before the GPU could start on the image.
import type { Gpu } from "../gpu/device.ts";
import type { ProjectorDims, VisionDims } from "./dims.ts";
import type { Int8MatmulSetting } from "./int8_matmul.ts";
import { VisionScratch } from "./vision.ts";
import { ProjectorScratch } from "./projector.ts";

/**
 * GPU bytes kept for the vision scratch unless told otherwise: a pass of up to 13 tiles of InternViT-6B
 * weight-only (323 MB a tile) or 12 with LLM.int8 (345 MB a tile + 20 MB), so 7 (max_num 6) with room.
 */
export const defaultVisionScratchBytes = 4 * 2 ** 30;

/** The scratch of encoder passes of up to `tiles` tiles (`forTiles` serves fewer). */
export interface EncoderScratch {
  readonly tiles: number;
  readonly vision: VisionScratch;
  readonly projector: ProjectorScratch;
}

/**
 * Keeps at most one EncoderScratch, the largest that fits `budgetBytes` (0 keeps none). A scratch is lent
 * to one caller at a time: `take` removes it from the pool until `giveBack`, so a second encodeImages that
 * runs meanwhile builds its own. GPU work needs no guard: a later submit that reuses the buffers runs after
 * the earlier ones in queue order.
 */
export class VisionScratchPool {
  private held: EncoderScratch | null = null;
  /** Scratches built and scratches lent from the pool (tests and probes read them). */
  allocations = 0;
  reuses = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly vision: VisionDims,
    private readonly projector: ProjectorDims,
    private readonly matmul: Int8MatmulSetting,
    readonly budgetBytes: number,
  ) {
    if (!(Number.isSafeInteger(budgetBytes) && budgetBytes >= 0)) {
      throw new Error(
        `VisionScratchPool: the budget must be an integer number of bytes ≥ 0, got ${budgetBytes}`,
      );
    }
  }

  /** Scratch for passes of up to `tiles` tiles: the pool's when it is large enough, else a new one. */
  take(tiles: number): EncoderScratch {
    const held = this.held;
    if (held && held.tiles >= tiles) {
      this.held = null;
      this.reuses++;
      return held;
    }
    this.allocations++;
    const vision = new VisionScratch(this.gpu, this.vision, tiles, this.matmul);
    try {
      return {
        tiles,
        vision,
        projector: new ProjectorScratch(this.gpu, this.vision, this.projector, tiles, this.matmul),
      };
    } catch (e) {
      vision.destroy();
      throw e;
    }
  }

  /**
   * Ends a `take` once its work is submitted: the pool keeps the larger of it and what it holds if that
   * fits the budget and destroys the other (work already submitted with it still completes).
   */
  giveBack(s: EncoderScratch): void {
    const keep = scratchBytes(s) <= this.budgetBytes && (!this.held || this.held.tiles < s.tiles);
    if (!keep) return destroyScratch(s);
    if (this.held) destroyScratch(this.held);
    this.held = s;
  }

  /** Builds and keeps a scratch for `tiles` tiles now, if the budget keeps anything (warm-up). */
  reserve(tiles: number): void {
    if (this.budgetBytes > 0) this.giveBack(this.take(tiles));
  }

  /** Tiles the kept scratch serves (0: none kept). */
  get heldTiles(): number {
    return this.held?.tiles ?? 0;
  }

  /** GPU bytes the pool holds. */
  get heldBytes(): number {
    return this.held ? scratchBytes(this.held) : 0;
  }

  destroy(): void {
    if (this.held) destroyScratch(this.held);
    this.held = null;
  }
}

function scratchBytes(s: EncoderScratch): number {
  return s.vision.byteLength + s.projector.byteLength;
}

function destroyScratch(s: EncoderScratch): void {
  s.vision.destroy();
  s.projector.destroy();
}
