import type { Tensor } from "../gpu/tensor.ts";
import type { InternVLModel } from "../model/internvl.ts";
import { gatherRows } from "../ops/gather_rows.ts";
import type { GenerateInput } from "./generate.ts";
import type { GenerationConfig } from "./types.ts";

export interface BeamSearchOptions {
  eosId: number;
  imageContextId: number;
  signal?: AbortSignal;
  lengthPenalty?: number;
}

interface Hypothesis {
  ids: number[];
  score: number;
}

/**
 * Beam search as transformers 4.37 `beam_search` + `BeamSearchScorer` does it for one prompt
 * (early_stopping=False, length_penalty 1, num_return_sequences 1): log_softmax scores (+ repetition
 * penalty over the generated ids), top 2·beams candidates over beams×V, eos candidates ranked below
 * `beams` dropped, finished hypotheses scored sum_logprobs / generated_len^length_penalty; the best
 * finished hypothesis wins and gets the eos appended when shorter than max_new_tokens.
 * Each prompt row of `input` is searched on its own (batch_chat results equal single ones).
 * Logits come back to the CPU every step (one wait per token): beams are for quality, not speed.
 */
export async function beamSearch(
  model: InternVLModel,
  input: GenerateInput,
  config: GenerationConfig,
  options: BeamSearchOptions,
): Promise<number[][]> {
  const results: number[][] = [];
  let imageRowStart = 0;
  for (let row = 0; row < input.ids.length; row++) {
    const ids = input.ids[row].filter((_, t) => input.mask[row][t] === 1);
    const images = ids.filter((id) => id === options.imageContextId).length;
    results.push(await searchOne(model, ids, input.imageEmbeds, imageRowStart, images, config, options));
    imageRowStart += images;
  }
  return results;
}

async function searchOne(
  model: InternVLModel,
  prompt: number[],
  allImageEmbeds: Tensor | null,
  imageRowStart: number,
  imageRows: number,
  config: GenerationConfig,
  options: BeamSearchOptions,
): Promise<number[]> {
  const gpu = model.gpu;
  const K = config.numBeams, V = model.dims.language.vocab, maxNew = config.maxNewTokens;
  const lengthPenalty = options.lengthPenalty ?? 1;
  const runner = model.newRunner(K, prompt.length + maxNew);
  const D = model.dims.language.hidden;
  // Every beam starts from the same prompt: the image rows are repeated once per beam.
  let imageEmbeds: Tensor | null = null;
  if (imageRows > 0 && allImageEmbeds) {
    imageEmbeds = gpu.createTensor("beam.image_embeds", "f32", [K * imageRows, D]);
    const rows = Int32Array.from({ length: K * imageRows }, (_, i) => imageRowStart + (i % imageRows));
    const rowsT = gpu.uploadTensor("beam.image_rows", "i32", [K * imageRows], rows);
    const r = gpu.recorder("beam.images");
    gatherRows(r, allImageEmbeds, rowsT, imageEmbeds);
    r.submit();
  }
  const next = gpu.createTensor("beam.next", "i32", [K]);
  const spareK = runner.cache.k.map((t) => gpu.createTensor(`${t.label}.spare`, t.dtype, t.shape));
  const spareV = runner.cache.v.map((t) => gpu.createTensor(`${t.label}.spare`, t.dtype, t.shape));
  const r0 = gpu.recorder("beam.prefill");
  const freePrefill = runner.recordPrefill(
    r0,
    Array.from({ length: K }, () => prompt),
    Array.from({ length: K }, () => prompt.map(() => 1)),
    options.imageContextId,
    imageEmbeds,
  );
  r0.submit();

  let beamIds: number[][] = Array.from({ length: K }, () => []);
  // Only the first beam is live at the start; the others are copies that must not be picked twice.
  let beamScores: number[] = Array.from({ length: K }, (_, k) => k === 0 ? 0 : -1e9);
  const hyps: Hypothesis[] = [];
  let worst = Infinity;
  const addHypothesis = (ids: number[], sumLogprobs: number, generatedLen: number) => {
    const score = sumLogprobs / generatedLen ** lengthPenalty;
    if (hyps.length < K || score > worst) {
      hyps.push({ ids, score });
      hyps.sort((a, b) => b.score - a.score);
      if (hyps.length > K) hyps.pop();
      worst = hyps.length < K ? Math.min(worst, score) : hyps[hyps.length - 1].score;
    }
  };
  let done = false;
  try {
    for (let step = 0; step < maxNew; step++) {
      if (options.signal?.aborted) break;
      const logits = await gpu.readF32(runner.logits); // [K, V]
      const cands = topCandidates(logits, K, V, beamIds, beamScores, config.repetitionPenalty, 2 * K);
      const curLen = step + 1;
      const kept: typeof cands = [];
      for (let rank = 0; rank < cands.length && kept.length < K; rank++) {
        const c = cands[rank];
        if (c.token === options.eosId) {
          if (rank >= K) continue;
          addHypothesis([...beamIds[c.beam]], c.score, curLen);
        } else kept.push(c);
      }
      done = hyps.length >= K && worst >= cands[0].score / curLen ** lengthPenalty;
      beamScores = kept.map((c) => c.score);
      beamIds = kept.map((c) => [...beamIds[c.beam], c.token]);
      if (done || step === maxNew - 1) break;
      // _reorder_cache: every layer's K/V rows follow their beams.
      gpu.writeTensor(next, Int32Array.from(kept, (c) => c.token));
      const r = gpu.recorder("beam.step");
      runner.cache.copyRowsTo(r, kept.map((c) => c.beam), { k: spareK, v: spareV });
      r.submit();
      for (let l = 0; l < spareK.length; l++) {
        [runner.cache.k[l], spareK[l]] = [spareK[l], runner.cache.k[l]];
        [runner.cache.v[l], spareV[l]] = [spareV[l], runner.cache.v[l]];
      }
      const r2 = gpu.recorder("beam.decode");
      runner.recordDecode(r2, next);
      r2.submit();
    }
    if (!done) {
      for (let k = 0; k < beamIds.length; k++) addHypothesis(beamIds[k], beamScores[k], beamIds[k].length);
    }
    const best = hyps[0]?.ids ?? [];
    return best.length < maxNew ? [...best, options.eosId] : best;
  } finally {
    freePrefill();
    runner.destroy();
    imageEmbeds?.buffer.destroy();
    for (const t of [next, ...spareK, ...spareV]) t.buffer.destroy();
  }
}

interface Candidate {
  beam: number;
  token: number;
  score: number;
}

/** The best `n` (beam, token) pairs by beamScore + log_softmax(logits) (after repetition penalty). */
function topCandidates(
  logits: Float32Array,
  K: number,
  V: number,
  beamIds: number[][],
  beamScores: number[],
  penalty: number,
  n: number,
): Candidate[] {
  const best: Candidate[] = [];
  for (let k = 0; k < K; k++) {
    const row = logits.subarray(k * V, (k + 1) * V);
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, row[i]);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i] - max);
    const logZ = max + Math.log(sum);
    const scores = new Float64Array(V);
    for (let i = 0; i < V; i++) scores[i] = row[i] - logZ;
    if (penalty !== 1) {
      for (const id of new Set(beamIds[k])) {
        scores[id] = scores[id] < 0 ? scores[id] * penalty : scores[id] / penalty;
      }
    }
    for (let i = 0; i < V; i++) {
      const score = scores[i] + beamScores[k];
      if (best.length < n || score > best[best.length - 1].score) {
        best.push({ beam: k, token: i, score });
        best.sort((a, b) => b.score - a.score);
        if (best.length > n) best.pop();
      }
    }
  }
  return best;
}
