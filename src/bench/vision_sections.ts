// Vision sections: InternViT + projector for 1, 7 and 13 tiles, the per-kernel profile of one tile, and
// time to first token for a 6-tile image + thumbnail and a short question (no KV reuse).
import { createHash } from "node:crypto";
import type { Recorder } from "../gpu/recorder.ts";
import { reshape, type Tensor } from "../gpu/tensor.ts";
import type { LmRunner } from "../model/lm_runner.ts";
import { fillRandom } from "../ops/fill_random.ts";
import { submittingEvery, type Tap, visionForward, VisionScratch } from "../model/vision.ts";
import { projectorForward, ProjectorScratch } from "../model/projector.ts";
import { KvPrefixCache } from "../engine/kv_prefix_cache.ts";
import { ImageEmbeddingCache } from "../engine/image_embedding_cache.ts";
import { generate } from "../engine/generate.ts";
import { warmUpEngine } from "../engine/warm_up.ts";
import { defaultGenerationConfig } from "../engine/types.ts";
import { randomF32 } from "../ref/random.ts";
import { planImageTiles, preprocessImage } from "../image/pixel_values.ts";
import { decodeImage } from "../image/decode_image.ts";
import { hasThumbnail } from "../image/dynamic_tiling.ts";
import { defaultImageWorkers, ImageWorkers } from "../image/image_workers.ts";
import { syntheticJpeg } from "./synthetic_photo.ts";
import type { BenchContext, Json } from "./bench_context.ts";
import { busyMsOf, median, nsToMs, type PassStamp } from "./gpu_timer.ts";
import { profileKernels } from "./kernel_profile.ts";
import { vitFlops } from "./model_cost.ts";
import { followupQuestionIds, imagePromptIds, syntheticTextIds, tokensPerTile } from "./shapes.ts";
import { medianWallMs, sig } from "./util.ts";
import { firstTokenFromKeptPrefix, textPrefixTtft } from "./text_prefix_ttft.ts";

const round = (x: number, digits?: number) => sig(x, digits === undefined ? 4 : Math.max(4, digits + 1));

/**
 * Median CPU time of preprocessImage on a synthetic 4:3 JPEG (a 12-megapixel phone photo; 640×480 at tiny
 * scale) that tiles into 6 + thumbnail at max_num 6, through the engine's default ImageWorkers and on this
 * thread alone.
 */
async function imagePreprocessing(imageSize: number, tiny: boolean) {
  const [w, h] = tiny ? [640, 480] : [4032, 3024];
  const jpeg = await syntheticJpeg(w, h);
  const options = { maxNum: 6, imageSize, maxPixels: 50_000_000 };
  const workers = defaultImageWorkers();
  const pool = new ImageWorkers(workers);
  try {
    const pooledMs = await medianWallMs(3, () => preprocessImage(jpeg, options, pool));
    const mainMs = await medianWallMs(3, () => preprocessImage(jpeg, options));
    const decodeMs = await medianWallMs(3, () => decodeImage(jpeg, options, pool));
    const decodeMainMs = await medianWallMs(3, () => decodeImage(jpeg, options));
    return {
      jpeg,
      image: `JPEG ${w}×${h}, ${(jpeg.length / 1e6).toFixed(1)} MB`,
      workers,
      pooledMs,
      mainMs,
      decodeMs,
      decodeMainMs,
    };
  } finally {
    pool.close();
  }
}

/** Scratch + GPU-random pixels for N tiles, and a function recording ViT + projector over them. */
async function vitSetup(ctx: BenchContext, tiles: number) {
  const { gpu, shapes } = ctx;
  const m = await ctx.model();
  const { vision, projector } = shapes;
  const S = vision.imageSize, T = vision.patchesPerSide ** 2 + 1;
  const pixels = gpu.createTensor("bench.pixels", "f32", [tiles, 3, S, S]);
  const vs = new VisionScratch(gpu, vision, tiles, m.model.matmul);
  const ps = new ProjectorScratch(gpu, vision, projector, tiles, m.model.matmul);
  const r = gpu.recorder("bench.vit.setup");
  fillRandom(r, pixels, { seed: 99, lo: -2, hi: 2 }); // normalised pixel range
  r.submit();
  await gpu.sync("preparing the ViT benchmark");
  const record = (rec: Recorder, tap?: Tap) => {
    visionForward(rec, m.vision, vs, pixels, tap);
    projectorForward(rec, m.projector, ps, reshape(vs.hidden, [tiles, T, vision.hidden]), vision, projector);
  };
  return {
    record: (rec: Recorder) => record(rec),
    /** INT8_MATMUL=llm-int8: outlier columns of the last int8 linear recorded (the last layer's fc2 input). */
    lastOutlierColumns: async () => vs.llmInt8 ? (await gpu.readU32(vs.llmInt8.scratch.outliers))[0] : null,
    /**
     * INT8_MATMUL=llm-int8(-prefill): each layer's fc2 input outlier count, from one more pass that submits
     * at every layer (a Recorder copies after its pass, and the next layer overwrites the count).
     */
    outlierColumnsByLayer: async () => {
      if (!vs.llmInt8) return null;
      const counts = gpu.createTensor("bench.vit.fc2_outliers", "u32", [vision.layers]);
      const rec = gpu.recorder("bench.vit.outlier_counts");
      const copy: Tap = (name, layer, t) => {
        if (name === "vit.llm_int8.fc2_outliers") rec.copyAfter(t, counts.buffer, 4, 4 * layer);
      };
      record(rec, submittingEvery("vit.llm_int8.fc2_outliers", 1, copy));
      rec.submit();
      const byLayer = Array.from(await gpu.readU32(counts));
      counts.buffer.destroy();
      return byLayer;
    },
    destroy: () => {
      pixels.buffer.destroy();
      vs.destroy();
      ps.destroy();
    },
  };
}

/** GPU ms (timestamps) or wall ms of one recorded pass. */
async function timeOnce(ctx: BenchContext, label: string, record: (r: Recorder) => void): Promise<number> {
  const { gpu, timer } = ctx;
  timer.start(label);
  const t0 = performance.now();
  const r = gpu.recorder(label);
  record(r);
  r.submit();
  const stamps = await timer.collect();
  await gpu.sync(label);
  const wall = performance.now() - t0;
  return stamps.length ? busyMsOf(stamps) : wall;
}

export async function vitSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const { shapes, timer } = ctx;
  const out: Record<string, Json> = { method: timer.method };
  let perTileMs: number | null = null;
  for (const tiles of shapes.vitTiles) {
    const estimate = perTileMs === null ? null : perTileMs * tiles;
    if (estimate !== null && !ctx.fits(estimate * (perTileMs! < 500 ? 4 : 1.2))) {
      out[`tiles_${tiles}`] = { skipped: `estimated ${round(estimate / 1000, 1)} s exceeds the time left` };
      continue;
    }
    const v = await vitSetup(ctx, tiles);
    try {
      if (perTileMs === null) await timeOnce(ctx, "vit.warmup", v.record); // builds every pipeline
      // Long runs are timed once (timestamps make one run exact); short ones three times.
      const first = await timeOnce(ctx, `vit ${tiles}`, v.record);
      const runs = [first];
      if (first < 500) {
        for (let i = 0; i < 2; i++) runs.push(await timeOnce(ctx, `vit ${tiles}`, v.record));
      }
      const ms = median(runs);
      perTileMs ??= ms / tiles;
      const flops = vitFlops(shapes.vision, tiles);
      const fc2Last = await v.lastOutlierColumns(); // left by the timed runs
      const fc2ByLayer = ctx.fits(ms * 1.5) ? await v.outlierColumnsByLayer() : null;
      out[`tiles_${tiles}`] = {
        ms: round(ms, 2),
        runs: runs.length,
        vit_TFLOPs: round(flops / (ms * 1e9), 3),
        llm_int8_outlier_columns_last_fc2: fc2Last,
        llm_int8_outlier_columns_fc2_by_layer: fc2ByLayer,
      };
      ctx.results[`vit_projector_ms_${tiles}tiles`] = round(ms, 2);
      if (tiles === 1 && ctx.fits(ms * 1.5)) {
        const prof = await profileKernels(ctx.gpu, timer, "vit.kernels", v.record, ctx.copyGBps);
        if (prof) {
          out.kernels_1tile = prof.rows.map((r) => ({
            op: r.op,
            dispatches: r.dispatches,
            ms: round(r.ms, 3),
            share: round(r.share),
            TFLOPs: round(r.TFLOPs, 3),
            GBps: round(r.GBps, 1),
          }));
        }
      }
    } finally {
      v.destroy();
    }
  }
  ctx.pipelinesWarm = true;
  return out;
}

/** Times the ttft section runs the follow-up round again after its first (each a wall-clock figure). */
const followupRepeats = 5;
/** Times it starts a new conversation about the image whose embeddings were kept (and whose image block). */
const keptImageRepeats = 3;

/**
 * Time to first token as a client sees it: pixel values (from the CPU, as a request brings them) →
 * encodeImages → generate() with one new token, until the token id is back on the CPU. "Cold" = the whole
 * prompt is processed (no KV reuse); "warm follow-up" = the next round of that conversation continuing its
 * kept KV cache as the engine does (then again, `followupRepeats` times). Pipelines are built already when
 * earlier sections used them.
 */
export async function ttftSection(ctx: BenchContext): Promise<Record<string, Json>> {
  const { shapes, timer } = ctx;
  const m = await ctx.model();
  const tiles = shapes.ttftTiles;
  const vit = ctx.results[`vit_projector_ms_${tiles}tiles`], pre = ctx.results.prefill_ms_1800;
  if (typeof vit === "number" && typeof pre === "number" && !ctx.fits(1.3 * (vit + pre))) {
    return { skipped: `estimated ${round((vit + pre) / 1000, 1)} s exceeds the time left` };
  }
  const S = shapes.vision.imageSize;
  const ids = imagePromptIds(shapes);
  const pixels = randomF32(tiles * 3 * S * S, 4242, -2, 2);
  const photo = tiles === 7 ? await imagePreprocessing(S, ctx.shapes.scale === "tiny") : null;
  const pipelinesWarm = ctx.pipelinesWarm;
  await warmUpEngine(m.model); // as WebGpuEngine.load does: a serving engine has its decode pipelines built
  // One new token on `runner` as the engine's greedy path makes it: the output and when its id was back.
  const firstToken = async (prompt: number[], imageEmbeds: Tensor | null, runner: LmRunner) => {
    let at = NaN;
    const out = await generate(m.model, { ids: [prompt], mask: [prompt.map(() => 1)], imageEmbeds }, {
      ...defaultGenerationConfig,
      maxNewTokens: 1,
    }, { eosId: -1, imageContextId: shapes.imageContextId, onStep: () => at = performance.now(), runner });
    return { out, at };
  };
  timer.start("ttft");
  const t0 = performance.now();
  const followup = followupQuestionIds(shapes);
  // The engine's runner for a new conversation keeps room for its follow-up rounds (followupRoom).
  const runner = m.model.newRunner(1, ids.length + 1 + followup.length + 8);
  const kept = new KvPrefixCache(Number.MAX_SAFE_INTEGER);
  const keptImages = new ImageEmbeddingCache(m.model.gpu, 2 ** 31);
  const tEncode = performance.now();
  const embeds = m.model.encodeImages(pixels, tiles);
  const encodeCpu = performance.now() - tEncode; // allocations, recording, submit: before the GPU starts
  let out: number[][], first: number;
  try {
    ({ out, at: first } = await firstToken(ids, embeds, runner));
    keptImages.keep("bench image", embeds); // as the engine keeps a round's embeddings (after its pass)
  } finally {
    embeds.buffer.destroy();
  }
  const ttft = first - t0;
  // Follow-up round on the same image, as WebGpuEngine.chat does it: the prompt extends the kept
  // conversation, so only its new tokens run (no vision pass).
  kept.keep([...ids, ...out[0].slice(0, -1)], ids.length, "bench image", runner);
  const nextIds = [...ids, ...out[0], ...followup];
  // A new conversation about the same image with another question, as the engine runs it while the first is
  // kept: the image's identity hashed, the kept conversation's system prompt and image block copied into a
  // new runner (KvPrefixCache.borrow, LmRunner.extractRow), then only the new question's ids.
  // The engine hashes a request's images, synchronously (SHA-256 of their bytes: the photo's JPEG, else the
  // pixel values).
  const hashed = photo?.jpeg ?? new Uint8Array(pixels.buffer);
  const imageEnd = ids.lastIndexOf(shapes.imageContextId) + 1;
  const otherIds = [...ids.slice(0, imageEnd), ...syntheticTextIds(shapes, ids.length - imageEnd, 17)];
  const sharedPrefixMs: number[] = [];
  for (let i = 0; i < keptImageRepeats; i++) {
    const t = performance.now();
    createHash("sha256").update(hashed).digest();
    const { at } = await firstTokenFromKeptPrefix(
      kept,
      otherIds,
      "bench image",
      imageEnd,
      firstToken,
      "another question about the image",
    );
    sharedPrefixMs.push(at - t);
  }
  const t1 = performance.now();
  let warmFirst: number;
  const hit = kept.take(
    nextIds,
    "bench image",
    ids.lastIndexOf(shapes.imageContextId) + 1,
    nextIds.length + 1,
  );
  if (!hit) throw new Error("ttft: the follow-up prompt did not match the kept conversation");
  const keptLength = Math.min(hit.shared, nextIds.length - 1);
  let stamps: PassStamp[];
  // The same round again on the same conversation, cut back to where the round began (as a third round
  // is: its runner's own bind groups are then cached too): wall clock to the first token and GPU passes.
  const repeats: { ms: number; gpuMs: number }[] = [];
  try {
    hit.runner.truncate(keptLength);
    warmFirst = (await firstToken(nextIds.slice(keptLength), null, hit.runner)).at;
    stamps = await timer.collect();
    for (let i = 0; i < followupRepeats; i++) {
      hit.runner.truncate(keptLength);
      timer.start("ttft-followup");
      const t = performance.now();
      const ms = (await firstToken(nextIds.slice(keptLength), null, hit.runner)).at - t;
      const passes = await timer.collect();
      repeats.push({ ms, gpuMs: busyMsOf(passes) });
    }
  } finally {
    hit.runner.destroy();
  }
  const warm = warmFirst - t1;
  // A new conversation about the same image (another question, or a follow-up whose KV cache was evicted), as
  // the engine runs it: the image's identity hashed (SHA-256 of its bytes: the photo's JPEG, else the pixel
  // values), its kept embeddings copied out, the whole prompt's pass in a new runner; no decode, no vision.
  const keptImageMs: number[] = [];
  for (let i = 0; i < keptImageRepeats; i++) {
    const t = performance.now();
    createHash("sha256").update(hashed).digest();
    const r = m.model.newRunner(1, ids.length + 1 + followup.length + 8);
    const e = keptImages.take("bench image");
    if (!e) throw new Error("ttft: the kept image embeddings were not found");
    try {
      keptImageMs.push((await firstToken(ids, e, r)).at - t);
    } finally {
      e.buffer.destroy();
      r.destroy();
    }
  }
  keptImages.clear();
  const text = await textPrefixTtft(shapes, m.model, firstToken);
  // The engine's default (IMAGE_RESIZE=gpu) from the photo's bytes: decoded on this thread, its tiling's
  // resizes and normalisation on the GPU before the vision pass.
  let fromJpeg = NaN, jpegDecodeMs = NaN, jpegEncodeCpuMs = NaN, twoDecodedFirst = NaN, twoPipelined = NaN;
  let jpegPasses: { pass: string; ms: number | null }[] = [];
  if (photo) {
    timer.start("ttft-jpeg");
    // The engine's pool (JPEG rows reconstructed in bands), its workers started as a serving engine's are.
    const pool = new ImageWorkers(photo.workers);
    await decodeImage(photo.jpeg, { maxPixels: 50_000_000 }, pool);
    const t2 = performance.now();
    const { grid } = planImageTiles(photo.jpeg, { maxNum: 6, imageSize: S, maxPixels: 50_000_000 });
    const decodeOne = async () => ({
      image: await decodeImage(photo.jpeg, { maxPixels: 50_000_000 }, pool),
      grid,
      thumbnail: hasThumbnail(grid, true),
    });
    const decoded = [await decodeOne()];
    const tDecoded = performance.now();
    jpegDecodeMs = tDecoded - t2;
    const r2 = m.model.newRunner(1, ids.length + 1);
    const tEncode2 = performance.now();
    const e2 = m.model.encodeImages(decoded, tiles);
    jpegEncodeCpuMs = performance.now() - tEncode2;
    try {
      fromJpeg = (await firstToken(ids, e2, r2)).at - t2;
    } finally {
      e2.buffer.destroy();
      r2.destroy();
    }
    jpegPasses = (await timer.collect()).slice(0, 3).map((s) => ({
      pass: s.label,
      ms: round(nsToMs(s.endNs - s.beginNs), 2),
    }));
    // Two photos in one request, to their embeddings on the GPU (wall clock, then a wait): both decoded
    // first, then encoded in groups of `tiles`, against each encoded as soon as it is decoded (the engine's
    // embedImages), where the second decodes during the first's vision pass.
    try {
      const tA = performance.now();
      const both = [await decodeOne(), await decodeOne()];
      const eA = m.model.encodeImages(both, 2 * tiles, undefined, tiles);
      await ctx.gpu.sync("two photos, decoded first");
      twoDecodedFirst = performance.now() - tA;
      eA.buffer.destroy();
      const tB = performance.now();
      const e1 = m.model.encodeImages([await decodeOne()], tiles);
      const e2b = m.model.encodeImages([await decodeOne()], tiles);
      await ctx.gpu.sync("two photos, each as it is decoded");
      twoPipelined = performance.now() - tB;
      e1.buffer.destroy();
      e2b.buffer.destroy();
    } finally {
      pool.close();
    }
  }
  ctx.results.ttft_cold_ms_7tiles = tiles === 7 ? round(ttft, 1) : null;
  ctx.results.ttft_warm_followup_ms = round(warm, 1);
  ctx.results.ttft_kept_image_ms_7tiles = tiles === 7 ? round(median(keptImageMs), 1) : null;
  ctx.results.ttft_shared_image_block_ms = round(median(sharedPrefixMs), 1);
  ctx.results.ttft_text_cold_ms_1800 = shapes.prefillTokens === 1800 ? round(text.coldMs, 1) : null;
  ctx.results.ttft_shared_text_prefix_ms = round(median(text.sharedMs), 1);
  ctx.results.ttft_image_preprocess_ms = photo ? round(photo.pooledMs, 1) : null;
  ctx.results.ttft_cold_from_jpeg_ms_7tiles = photo ? round(fromJpeg, 1) : null;
  return {
    tiles,
    // The CPU work before the GPU pass: decoding and tiling a 4:3 photo (6 tiles + thumbnail), as the
    // engine does with its ImageWorkers and on the serving thread alone.
    ...(photo
      ? {
        image: photo.image,
        image_preprocess_ms: round(photo.pooledMs, 1),
        image_preprocess_workers: photo.workers,
        image_preprocess_main_thread_ms: round(photo.mainMs, 1),
        image_decode_ms: round(photo.decodeMs, 1),
        image_decode_main_thread_ms: round(photo.decodeMainMs, 1),
        // IMAGE_RESIZE=cpu: the pooled preprocessing then the TTFT from pixel values.
        ttft_from_jpeg_cpu_resize_ms: round(photo.pooledMs + ttft, 1),
        // IMAGE_RESIZE=gpu (default), measured: JPEG bytes → decode → GPU tiling → vision → first token.
        ttft_from_jpeg_ms: round(fromJpeg, 1),
        // Its parts: decoding (this run), the CPU side of encodeImages (image upload, taps, recording),
        // the first GPU passes (the tiling's rows pass, then the vision passes).
        ttft_from_jpeg_decode_ms: round(jpegDecodeMs, 1),
        ttft_from_jpeg_encode_images_cpu_ms: round(jpegEncodeCpuMs, 1),
        ttft_from_jpeg_first_gpu_passes: jpegPasses,
        ttft_from_jpeg_beyond_decode_ms: round(fromJpeg - jpegDecodeMs - ttft, 1),
        two_photos_to_embeddings_ms_decoded_first: round(twoDecodedFirst, 1),
        two_photos_to_embeddings_ms_each_as_decoded: round(twoPipelined, 1),
      }
      : {}),
    prompt_tokens: ids.length,
    image_tokens: tiles * tokensPerTile(shapes.vision),
    ttft_ms: round(ttft, 1),
    // Where the wall time beyond the GPU's goes: the runner (KV cache), then the vision pass's CPU side.
    ttft_runner_cpu_ms: round(tEncode - t0, 2),
    ttft_encode_images_cpu_ms: round(encodeCpu, 2),
    followup_new_tokens: nextIds.length - hit.shared,
    ttft_warm_followup_ms: round(warm, 1),
    ttft_warm_followup_repeats_ms: repeats.map((x) => round(x.ms, 1)),
    ttft_warm_followup_repeats_gpu_ms: repeats.map((x) => round(x.gpuMs, 1)),
    ttft_kept_image_ms: keptImageMs.map((x) => round(x, 1)),
    ttft_shared_image_block_ms: sharedPrefixMs.map((x) => round(x, 1)),
    // Text conversations: a prompt pass by its length from an empty runner (what copying that many ids
    // saves), and a long first message's branch starting from a copy of the prefix a kept one shares.
    text_prompt_ttft_ms_by_length: text.byLength,
    text_long_tokens: text.longTokens,
    ttft_text_cold_ms: round(text.coldMs, 1),
    ttft_shared_text_prefix_ms: text.sharedMs.map((x) => round(x, 1)),
    text_shared_tokens: text.sharedTokens,
    pipelines_already_built: pipelinesWarm,
    gpu_passes_ms: stamps.map((s) => ({ pass: s.label, ms: round(nsToMs(s.endNs - s.beginNs), 2) })),
    gpu_sum_ms: stamps.length ? round(busyMsOf(stamps), 1) : null,
  };
}
