import type { Gpu } from "../gpu/device.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { DispatchCache } from "../gpu/dispatch_cache.ts";
import type { LanguageDims } from "./dims.ts";
import { type Int8MatmulSetting, llmInt8ForMany, weightOnly } from "./int8_matmul.ts";
import type { LlmInt8ScratchPool } from "../ops/llm_int8.ts";
import { maxMatvecTokens } from "../ops/linear.ts";
import { KvCache, type KvCacheDtype } from "./kv_cache.ts";
import { languageForward, type LanguageInputs, LanguageScratch, type LanguageWeights } from "./language.ts";
import { PromptScratchPool } from "./prompt_scratch_pool.ts";
import { submittingEvery, type Tap } from "./vision.ts";

/**
 * Longest single-sequence prompt that runs as decode-sized chunks instead of one tiled pass (weight-only). H200,
 * a layer's products (PERF.md v64, v65): 16 rows 0.77 ms as two chunks against 0.93 tiled (32×128, split K),
 * 24 rows 1.15 against 0.96, 32 rows 1.54 against 0.97, 64 rows 3.07 against 1.68 (64×64).
 */
export const maxChunkedPrompt = 16;
/** Submits of a tiled prompt pass's layers (6 layers each for InternLM2-20B's 48). */
const promptSubmits = 8;

/**
 * One batch of B sequences being generated: the KV cache, decode-step buffers and the logits.
 * Prompts are left-padded to one length L (the reference batch_chat); rotary positions start at 0 at
 * each row's first real token (position_ids = cumsum(attention_mask) − 1, pads → 1).
 */
export class LmRunner {
  readonly cache: KvCache;
  readonly logits: Tensor; // [B, V]
  /** Bind groups of the decode step, reused token after token (pass it to the step's recorder). */
  readonly decodeCache = new DispatchCache("lm.decode");
  /** B rows of one token (read by benchmarks: the LLM.int8 outlier counts). */
  readonly step: LanguageScratch;
  private readonly stepPositions: Tensor; // [B] i32
  private readonly stepImageRow: Tensor; // [B] i32, all −1
  private readonly stepLastRows: Tensor; // [B] i32 = 0..B−1
  /** Rotary position of each row's next token. */
  private nextPositions: number[] = [];
  /** Real positions each row holds before `cache.length`, set by `adoptPrefixes` for the next prompt pass. */
  private prefixLengths: number[] | null = null;

  constructor(
    private readonly gpu: Gpu,
    private readonly weights: LanguageWeights,
    private readonly dims: LanguageDims,
    readonly batch: number,
    readonly capacity: number,
    /** INT8_MATMUL and the checkpoint's llm_int8_threshold. */
    readonly matmul: Int8MatmulSetting = weightOnly,
    /** The LLM.int8 GEMM scratch the prompt passes share (the model's); null: one per prompt. */
    private readonly gemmPool: LlmInt8ScratchPool | null = null,
    /** How the KV cache stores keys and values (KV_CACHE_DTYPE). */
    kvDtype: KvCacheDtype = "f32",
    /** Scratch for short single-sequence prompt passes, kept between passes (the model's); null: fresh. */
    private readonly promptPool: PromptScratchPool | null = null,
  ) {
    if (promptPool && promptPool.matmul.mode !== matmul.mode) {
      throw new Error(`LmRunner: a ${matmul.mode} runner given a ${promptPool.matmul.mode} prompt pool`);
    }
    if (capacity > dims.maxPositions) {
      throw new Error(`Context of ${capacity} tokens exceeds the model's ${dims.maxPositions} positions`);
    }
    this.cache = new KvCache(gpu, dims, batch, capacity, kvDtype);
    this.logits = gpu.createTensor("lm.logits", "f32", [batch, dims.vocab]);
    this.step = new LanguageScratch(gpu, dims, batch, 1, matmul);
    this.stepPositions = gpu.createTensor("lm.step_positions", "i32", [batch]);
    this.stepImageRow = gpu.uploadTensor("lm.step_image_row", "i32", [batch], new Int32Array(batch).fill(-1));
    this.stepLastRows = gpu.uploadTensor(
      "lm.step_last_rows",
      "i32",
      [batch],
      Int32Array.from({ length: batch }, (_, b) => b),
    );
  }

  /**
   * Records the prompt pass. ids/mask: [B][L] (left-padded, mask 0 on pads); imageEmbeds: [M, D] rows
   * that replace the <IMG_CONTEXT> ids in order of appearance over the flattened batch.
   * A runner that already holds positions (a kept conversation, see `truncate`) continues after them:
   * then B must be 1 and the new ids unpadded.
   * Returns a function that frees the prompt-sized scratch once the work has been submitted.
   */
  recordPrefill(
    r: Recorder,
    ids: number[][],
    mask: number[][],
    imageContextId: number,
    imageEmbeds: Tensor | null,
    tap?: Tap,
  ): () => void {
    const B = this.batch, L = ids[0].length;
    if (ids.length !== B || ids.some((row) => row.length !== L) || mask.some((row) => row.length !== L)) {
      throw new Error(`recordPrefill: expected ${B} rows of ${L} ids and mask values`);
    }
    const start = this.cache.length;
    const prefix = this.prefixLengths;
    this.prefixLengths = null;
    if (start > 0 && !prefix && (B !== 1 || mask[0].some((m) => m !== 1))) {
      throw new Error("recordPrefill: only an unpadded single sequence can continue a kept cache");
    }
    const flatIds = new Int32Array(B * L), imageRow = new Int32Array(B * L).fill(-1);
    const positions = new Int32Array(B * L), lastRows = new Int32Array(B);
    const keyValid = new Int32Array(B * this.capacity).fill(1);
    // Adopted rows: the positions before each row's own prefix are padding.
    prefix?.forEach((n, b) => keyValid.fill(0, b * this.capacity, b * this.capacity + start - n));
    let imageRows = 0;
    this.nextPositions = [];
    for (let b = 0; b < B; b++) {
      // A continued sequence's positions go on from its real tokens (a single one has no padding).
      let seen = prefix ? prefix[b] : start;
      for (let t = 0; t < L; t++) {
        const i = b * L + t;
        flatIds[i] = ids[b][t];
        keyValid[b * this.capacity + start + t] = mask[b][t] ? 1 : 0;
        if (mask[b][t]) seen++;
        positions[i] = mask[b][t] ? seen - 1 : 1;
        if (ids[b][t] === imageContextId && mask[b][t]) imageRow[i] = imageRows++;
      }
      lastRows[b] = b * L + L - 1;
      this.nextPositions.push(seen);
    }
    const M = imageEmbeds ? imageEmbeds.shape[0] : 0;
    if (imageRows !== M) {
      throw new Error(
        `The prompt has ${imageRows} <IMG_CONTEXT> tokens but ${M} image embedding rows were given`,
      );
    }
    const g = this.gpu;
    g.writeTensor(this.cache.keyValid, keyValid);
    // A short single-sequence prompt (a follow-up round's new tokens) runs as chunks of decode size: the
    // matrix-vector kernels stream the weights once per ≤ 8 tokens, where the f32 tiled kernel would take
    // longer up to ~16 rows even with split K (maxChunkedPrompt). The LLM.int8 GEMM takes 31 rows in ≈ 50 ms
    // of linears (PERF.md v22), so its modes run such a prompt as one pass.
    const chunked = B === 1 && L > maxMatvecTokens && L <= maxChunkedPrompt &&
      !llmInt8ForMany(this.matmul.mode);
    const chunk = chunked ? maxMatvecTokens : L;
    const freed: (() => void)[] = [];
    const freeAll = () => freed.forEach((f) => f());
    try {
      for (let at = 0; at < L; at += chunk) {
        const n = Math.min(chunk, L - at);
        const rows = (a: Int32Array) => B === 1 ? a.subarray(at, at + n) : a;
        const last = n === L ? lastRows : Int32Array.of(n - 1);
        // A tiled pass is submitted every few layers, so the GPU starts on the first while the CPU records the
        // rest (a prompt pass is ~1200 dispatches; an 1800-token text prompt went from 1206 to 1048 ms from
        // recording to done on the H100 host). Decode-sized chunks stay one submit each.
        const every = Math.ceil(this.dims.layers / promptSubmits);
        const tiled = B * n > maxMatvecTokens;
        const parts = tiled ? submittingEvery("lm.layer", every, tap) : tap;
        const pool = this.promptPool;
        let scratch: LanguageScratch, tensors: Omit<LanguageInputs, "imageEmbeds">;
        let releaseOnSubmit: (() => void) | null = null;
        if (pool && PromptScratchPool.takes(B, n)) {
          // Kept scratch: this pass binds what an earlier one of its class bound, and takes its bind groups from
          // the caches of that pass's submits (the layers' parts, then the caller's).
          const lease = pool.acquire(n, tiled ? Math.floor(this.dims.layers / every) + 1 : 1);
          ({ scratch, inputs: tensors } = lease);
          g.writeTensor(tensors.ids, rows(flatIds));
          g.writeTensor(tensors.imageRow, rows(imageRow));
          g.writeTensor(tensors.positions, rows(positions));
          g.writeTensor(tensors.lastRows, last);
          r.useCaches(lease.caches);
          let released = false;
          const release = () => {
            if (!released) pool.release(lease);
            released = true;
          };
          freed.push(release);
          releaseOnSubmit = release;
        } else {
          const made = tensors = {
            ids: g.uploadTensor("lm.prompt_ids", "i32", [B * n], rows(flatIds)),
            imageRow: g.uploadTensor("lm.prompt_image_row", "i32", [B * n], rows(imageRow)),
            positions: g.uploadTensor("lm.prompt_positions", "i32", [B * n], rows(positions)),
            lastRows: g.uploadTensor("lm.prompt_last_rows", "i32", [B], last),
          };
          const fresh = scratch = new LanguageScratch(g, this.dims, B, n, this.matmul, this.gemmPool);
          freed.push(() => {
            fresh.destroy();
            for (const t of Object.values(made)) t.buffer.destroy();
          });
        }
        this.cache.length = start + at;
        languageForward(
          r,
          this.weights,
          this.dims,
          this.cache,
          scratch,
          { ...tensors, imageEmbeds },
          this.logits,
          parts,
        );
        // Each chunk is submitted as soon as it is recorded, so the GPU runs it while the CPU records the next.
        if (chunk < L && at + n < L) {
          r.submit();
          // A chunk submitted for real gives its kept scratch back at once, so the next chunk of its size takes
          // the same scratch and bind groups (only its params change); a held one keeps it until the free.
          if (!r.holding) releaseOnSubmit?.();
        }
      }
    } catch (e) {
      freeAll(); // parts submitted keep what they use; the rest is dropped with the caller's recorder
      throw e;
    }
    this.cache.length = start + L;
    return freeAll;
  }

  /** Records one decode step feeding `ids` ([B] i32, e.g. the previous step's choice, on the GPU). */
  recordDecode(r: Recorder, ids: Tensor, tap?: Tap): void {
    // Written now, executed in queue order: after every earlier submit, before this recorder's.
    this.gpu.writeTensor(this.stepPositions, Int32Array.from(this.nextPositions));
    this.nextPositions = this.nextPositions.map((p) => p + 1);
    languageForward(
      r,
      this.weights,
      this.dims,
      this.cache,
      this.step,
      {
        ids,
        imageRow: this.stepImageRow,
        imageEmbeds: null,
        positions: this.stepPositions,
        lastRows: this.stepLastRows,
      },
      this.logits,
      tap,
    );
    this.cache.length++;
  }

  /**
   * Forgets every position from `length` on (a single unpadded sequence), so that a later prompt sharing
   * the first `length` tokens continues from here instead of recomputing them.
   */
  truncate(length: number): void {
    if (this.batch !== 1 || length > this.cache.length || length < 0) {
      throw new Error(`truncate(${length}): only a single sequence holding ≥ ${length} positions can be cut`);
    }
    this.cache.length = length;
    this.nextPositions = [length];
  }

  /**
   * A single-sequence runner of `capacity` positions holding row `b`'s positions from the `segments` (cache
   * index, count) one after another: a batched round's row without its padding (positions count real tokens
   * only, so the keys need no change), ready to continue like a runner that ran that sequence alone.
   */
  extractRow(b: number, segments: [from: number, count: number][], capacity: number): LmRunner {
    const total = segments.reduce((n, [, count]) => n + count, 0);
    for (const [from, count] of segments) {
      if (b < 0 || b >= this.batch || from < 0 || count < 0 || from + count > this.cache.length) {
        throw new Error(
          `extractRow(${b}, ${from}, ${count}): outside the ${this.batch} × ${this.cache.length} filled`,
        );
      }
    }
    if (total < 1 || total > capacity) {
      throw new Error(`extractRow: ${total} positions for a capacity of ${capacity}`);
    }
    const row = new LmRunner(
      this.gpu,
      this.weights,
      this.dims,
      1,
      capacity,
      this.matmul,
      this.gemmPool,
      this.cache.dtype,
      this.promptPool,
    );
    const r = this.gpu.recorder("lm.extract_row");
    let to = 0;
    for (const [from, count] of segments) {
      row.cache.copyPositions(r, this.cache, { row: b, at: from }, { row: 0, at: to }, count);
      to += count;
    }
    r.submit();
    this.gpu.writeTensor(row.cache.keyValid, new Int32Array(capacity).fill(1));
    row.cache.length = total;
    row.nextPositions = [total];
    return row;
  }

  /**
   * Fills this fresh runner's rows with kept sequences so that one batched prompt pass continues them all:
   * row b gets the first `counts[b]` positions of `sources[b]` (a single-sequence runner; null and 0 for a
   * row that starts empty), right-aligned to end at the longest, the positions before them masked.
   */
  adoptPrefixes(sources: (LmRunner | null)[], counts: number[]): void {
    if (sources.length !== this.batch || counts.length !== this.batch || this.cache.length !== 0) {
      throw new Error(`adoptPrefixes: a fresh runner of ${this.batch} rows takes ${this.batch} prefixes`);
    }
    const P = Math.max(0, ...counts);
    if (P > this.capacity) {
      throw new Error(`adoptPrefixes: ${P} positions exceed the capacity ${this.capacity}`);
    }
    const r = this.gpu.recorder("lm.adopt_prefixes");
    sources.forEach((src, b) => {
      const n = counts[b];
      if (n === 0) return;
      if (!src || src.batch !== 1 || n > src.cache.length) {
        throw new Error(`adoptPrefixes: row ${b} wants ${n} positions its source does not hold`);
      }
      this.cache.copyPositions(r, src.cache, { row: 0, at: 0 }, { row: b, at: P - n }, n);
    });
    r.submit();
    this.cache.length = P;
    this.prefixLengths = [...counts];
  }

  get remaining(): number {
    return this.capacity - this.cache.length;
  }

  destroy(): void {
    this.cache.destroy();
    this.step.destroy();
    this.decodeCache.destroy();
    for (const t of [this.logits, this.stepPositions, this.stepImageRow, this.stepLastRows]) {
      t.buffer.destroy();
    }
  }
}
