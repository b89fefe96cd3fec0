// The shapes the benchmark runs: the real InternVL-Chat-V1.5 ones, or tiny ones that take the same code path
// on a CPU adapter (llvmpipe: 2 cores, 128 MiB per binding) in seconds.
import type { LanguageDims, ProjectorDims, VisionDims } from "../model/dims.ts";

export type BenchScale = "full" | "tiny";

export interface BenchShapes {
  scale: BenchScale;
  vision: VisionDims;
  projector: ProjectorDims;
  language: LanguageDims;
  /** Prompt ids used by the synthetic prompts (real V1.5 ids at full scale, REFERENCE §4). */
  imageContextId: number;
  /** KV lengths the batch-1 decode step is timed at. */
  decodeContexts: number[];
  /** Batch sizes for aggregate decode throughput (at the first decode context). */
  decodeBatches: number[];
  decodeSteps: number;
  vitTiles: number[];
  prefillTokens: number;
  /** Time to first token: tiles of the image (6 + thumbnail) and text tokens around the image block. */
  ttftTiles: number;
  ttftTextTokens: number;
  /** Decode steps of the real generate() loop after a prompt of decodeContexts[0] tokens. */
  loopTokens: number;
  /**
   * The loop's firstPartDispatches (generate's; undefined: its default, what the server uses): the tiny
   * model's steps are shorter than the default's first part, so they split at fewer to be measured so.
   */
  loopFirstPartDispatches?: number;
  /** Prompt ids a piece of a newcomer joining running rows (0: its whole pass at once), and runs of each. */
  joinChunkTokens: number[];
  joinRuns: number;
  /** Layers of the real-width model whose logits are compared with PyTorch's. */
  compareLayers: number;
  compareTokens: number;
  /** Bytes the copy kernel moves per dispatch (read + write both count toward GB/s). */
  copyBytes: number;
}

// InternViT-6B-448px-V1-5 and InternLM2-Chat-20B (REFERENCE §1).
const fullVision: VisionDims = {
  hidden: 3200,
  heads: 25,
  headDim: 128,
  layers: 45,
  intermediate: 12800,
  eps: 1e-6,
  imageSize: 448,
  patchSize: 14,
  patchesPerSide: 32,
};
const fullLanguage: LanguageDims = {
  hidden: 6144,
  heads: 48,
  kvHeads: 8,
  headDim: 128,
  layers: 48,
  intermediate: 16384,
  vocab: 92553,
  eps: 1e-5,
  ropeTheta: 1e6,
  maxPositions: 32768,
};

export const fullShapes: BenchShapes = {
  scale: "full",
  vision: fullVision,
  projector: { inFeatures: 4 * fullVision.hidden, hidden: fullLanguage.hidden, eps: 1e-5 },
  language: fullLanguage,
  imageContextId: 92546,
  decodeContexts: [512, 4096],
  decodeBatches: [4, 8],
  decodeSteps: 32,
  vitTiles: [1, 7, 13],
  prefillTokens: 1800,
  ttftTiles: 7,
  // 7·256 image tokens + ~50 of template and question = 1842, the PyTorch baseline's prompt.
  ttftTextTokens: 50,
  loopTokens: 128,
  joinChunkTokens: [0, 512, 256, 128],
  joinRuns: 3,
  compareLayers: 2,
  compareTokens: 16,
  copyBytes: 1 << 30,
};

// Same head structure ratios (GQA 2:1, Dh multiple of 4, K % 16 == 0 for the int8 matvec), tiny widths.
const tinyVision: VisionDims = {
  hidden: 64,
  heads: 2,
  headDim: 32,
  layers: 2,
  intermediate: 128,
  eps: 1e-6,
  imageSize: 112,
  patchSize: 14,
  patchesPerSide: 8,
};
const tinyLanguage: LanguageDims = {
  hidden: 64,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  layers: 2,
  intermediate: 176,
  vocab: 1000,
  eps: 1e-5,
  ropeTheta: 1e6,
  maxPositions: 8192,
};

export const tinyShapes: BenchShapes = {
  scale: "tiny",
  vision: tinyVision,
  projector: { inFeatures: 4 * tinyVision.hidden, hidden: tinyLanguage.hidden, eps: 1e-5 },
  language: tinyLanguage,
  imageContextId: 997,
  decodeContexts: [512, 4096],
  decodeBatches: [4, 8],
  decodeSteps: 8,
  vitTiles: [1, 7, 13],
  prefillTokens: 1800,
  ttftTiles: 7,
  ttftTextTokens: 50,
  loopTokens: 8,
  loopFirstPartDispatches: 4,
  joinChunkTokens: [0, 256],
  joinRuns: 1,
  compareLayers: 2,
  compareTokens: 16,
  copyBytes: 8 << 20,
};

export function benchShapes(scale: BenchScale): BenchShapes {
  return scale === "tiny" ? tinyShapes : fullShapes;
}

/** Image tokens one tile contributes after the pixel shuffle (256 at full scale). */
export function tokensPerTile(v: VisionDims): number {
  return (v.patchesPerSide / 2) ** 2;
}

/** n text ids of the synthetic prompts (never the image context id). */
export function syntheticTextIds(shapes: BenchShapes, n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (seed + i * 7919) % shapes.language.vocab).map((id) =>
    id === shapes.imageContextId ? 1 : id
  );
}

/**
 * A follow-up round's question in the ttft section: "<|im_end|><|im_start|>user\n" + a short question +
 * template tail, 30 ids. With the last round's answer token its prompt pass runs 31 new ids.
 */
export function followupQuestionIds(shapes: BenchShapes): number[] {
  return syntheticTextIds(shapes, 30, 13);
}

/**
 * The time-to-first-token prompt: system + "<img>", ttftTiles tiles' image block, "</img>\n" + question +
 * template tail (1842 ids at full scale, the PyTorch baseline's prompt).
 */
export function imagePromptIds(shapes: BenchShapes): number[] {
  const half = shapes.ttftTextTokens >> 1;
  return [
    ...syntheticTextIds(shapes, half, 5),
    ...new Array(shapes.ttftTiles * tokensPerTile(shapes.vision)).fill(shapes.imageContextId),
    ...syntheticTextIds(shapes, shapes.ttftTextTokens - half, 9),
  ];
}
