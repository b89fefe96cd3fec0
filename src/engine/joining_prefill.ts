import type { Tensor } from "../gpu/tensor.ts";
import type { InternVLModel } from "../model/internvl.ts";
import type { ImagePieces } from "../model/image_encoding.ts";
import type { LmRunner } from "../model/lm_runner.ts";
import { copyRows } from "../ops/gather_rows.ts";

/** A recorded prompt chunk: its held submit, what to free after it, and the ids and image rows it takes. */
interface HeldChunk {
  submit: () => void;
  free: () => void;
  ids: number;
  images: number;
}

/**
 * A joining round's images, once it knows what they are: `begin` starts their pieces when the first is due
 * (null: no images), and `drop` frees what it holds if `begin` is never called (embeddings kept from before).
 */
export interface JoinImages {
  begin: () => ImagePieces | null;
  drop?: () => void;
}

/**
 * The prompt pass of a round that joins a running batch, cut into pieces that run between the batch's decode
 * steps (`step`, one piece a call), so the batch goes on making tokens meanwhile instead of waiting for the
 * whole pass: its image encoding a few encoder layers a piece (as many as make about the arithmetic of a
 * prompt chunk: InternVLModel.visionLayersLike), then its prompt in chunks of `chunkTokens` ids, in a
 * runner of its own. It is `ready` once every prompt id but the last is in that
 * runner's cache: the round then goes on like a batch row paused there, its last prompt id the one new
 * token it brings into the next batch.
 */
export class JoiningPrefill {
  readonly runner: LmRunner;
  /** Why it cannot go on (a bad image, an abort); its round is then the caller's to fail. */
  error: unknown = null;
  private prepared: JoinImages | null = null;
  private begun = false;
  private destroyed = false;
  private encoding: ImagePieces | null = null;
  private embeds: Tensor | null = null;
  private encoded = false;
  /** A chunk recorded ahead by `prepare`, not yet submitted. */
  private held: HeldChunk | null = null;
  /** Prompt ids in the runner's cache, and image rows they used. */
  private at = 0;
  private imageRowsUsed = 0;
  private readonly total: number;
  /** Settles once `prepared` or `error` is set from the images. */
  private readonly imagesSettled: Promise<void>;

  constructor(
    private readonly model: InternVLModel,
    private readonly promptIds: number[],
    private readonly imageContextId: number,
    /** Resolves once the round's images are decoded (or found kept): what starts the pieces `step` submits. */
    images: Promise<JoinImages>,
    private readonly signal: AbortSignal | undefined,
    /** Prompt ids a piece (JOIN_CHUNK_TOKENS, > 0). */
    private readonly chunkTokens: number,
  ) {
    // Settled handlers first: a constructor that throws below must not leave the images' rejection unhandled.
    this.imagesSettled = images.then((prepared) => {
      if (this.destroyed) prepared.drop?.();
      else this.prepared = prepared;
    }, (e) => {
      this.error ??= e;
    });
    if (!(Number.isInteger(chunkTokens) && chunkTokens >= 1)) {
      throw new Error(`JoiningPrefill: chunkTokens ${chunkTokens} must be a positive integer`);
    }
    if (promptIds.length < 2) throw new Error("JoiningPrefill: a prompt of at least two ids");
    this.total = promptIds.length - 1;
    this.runner = model.newRunner(1, this.total);
  }

  get ready(): boolean {
    return this.error === null && this.at === this.total;
  }

  get failed(): boolean {
    return this.error !== null;
  }

  /**
   * Submits the next piece, if its inputs are there; nothing once ready or failed. Returns whether it
   * submitted one.
   */
  step(): boolean {
    if (this.error !== null || this.ready) return false;
    if (this.signal?.aborted) {
      this.error = this.signal.reason ?? new DOMException("aborted", "AbortError");
      return false;
    }
    if (!this.encoded) {
      if (!this.prepared) return false;
      try {
        if (!this.begun) {
          this.begun = true;
          this.encoding = this.prepared.begin();
        }
        if (this.encoding) {
          // An encoder piece is this step's piece; embeddings kept from before have none, the prompt goes on.
          const piece = !this.encoding.done;
          if (piece) this.encoding.step();
          if (this.encoding.done) {
            this.embeds = this.encoding.take();
            this.encoding.destroy();
            this.encoding = null;
            this.encoded = true;
          }
          if (piece) return true;
        }
      } catch (e) {
        this.error = e;
        return false;
      }
      this.encoded = true; // a text prompt goes on at once
    }
    let submitted = false;
    try {
      const chunk = this.held ?? this.recordChunk();
      this.held = null;
      try {
        chunk.submit();
        submitted = true;
        this.at += chunk.ids;
        this.imageRowsUsed += chunk.images;
      } finally {
        chunk.free();
      }
    } catch (e) {
      this.error = e; // a GPU error: the round fails, the batch goes on
    }
    if (this.ready) this.releaseEmbeds();
    return submitted;
  }

  /**
   * Records the next prompt chunk now, for `step` to submit: called while the GPU is busy with the batch's
   * steps, so the chunk's recording (~60–120 ms of CPU for InternLM2-20B on the H100 host, against ~130 ms
   * of GPU for 256 ids) does not leave the GPU idle before it. Nothing while the images encode or a chunk is
   * held.
   */
  prepare(): void {
    if (this.error !== null || this.ready || this.held || !this.encoded) return;
    if (this.signal?.aborted) return; // step fails it
    try {
      this.held = this.recordChunk();
    } catch (e) {
      this.error = e;
    }
  }

  /** The next chunk of the prompt into the runner's cache, recorded, its submit (one or more parts) held. */
  private recordChunk(): HeldChunk {
    const ids = this.promptIds.slice(this.at, this.at + Math.min(this.chunkTokens, this.total - this.at));
    const images = ids.filter((id) => id === this.imageContextId).length;
    const gpu = this.model.gpu;
    const r = gpu.recorder("join.prefill");
    const submit = r.holdSubmits();
    let rows: Tensor | null = null;
    if (images > 0) {
      if (!this.embeds) throw new Error("JoiningPrefill: image tokens in the prompt but no image embeddings");
      rows = gpu.createTensor("join.image_rows", "f32", [images, this.embeds.shape[1]]);
      copyRows(r, this.embeds, this.imageRowsUsed, rows);
    }
    const free = this.runner.recordPrefill(r, [ids], [ids.map(() => 1)], this.imageContextId, rows);
    r.submit();
    return {
      submit,
      // After the submit: the queued work keeps what it uses.
      free: () => {
        free();
        rows?.buffer.destroy();
      },
      ids: ids.length,
      images,
    };
  }

  /** Submits every piece left, waiting for the images if need be (the batch it was to join has ended). */
  async finish(): Promise<void> {
    await this.imagesSettled;
    while (!this.ready && !this.failed) this.step();
  }

  private releaseEmbeds(): void {
    if (!this.begun) this.prepared?.drop?.();
    this.prepared = null;
    this.held?.free(); // recorded, never submitted
    this.held = null;
    this.encoding?.destroy();
    this.encoding = null;
    this.embeds?.buffer.destroy();
    this.embeds = null;
  }

  /** Frees what it holds; the runner too unless `keepRunner` (it went on as a paused row). */
  destroy(keepRunner = false): void {
    this.destroyed = true;
    this.releaseEmbeds();
    if (!keepRunner) this.runner.destroy();
  }
}
