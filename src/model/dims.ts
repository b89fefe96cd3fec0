/** The sizes the forward passes need, derived once from config.json (src/weights/config.ts). */
export interface VisionDims {
  hidden: number; // D
  heads: number; // H
  headDim: number; // Dh
  layers: number; // layers actually run (select_layer applied)
  intermediate: number;
  eps: number;
  imageSize: number; // S (448)
  patchSize: number; // p (14)
  patchesPerSide: number; // P = S / p (32)
}

export interface ProjectorDims {
  inFeatures: number; // 4·D_vision after pixel shuffle
  hidden: number; // D_llm
  eps: number; // mlp1.0 LayerNorm eps
}

export interface LanguageDims {
  hidden: number; // D
  heads: number; // H
  kvHeads: number; // Hkv
  headDim: number; // Dh
  layers: number;
  intermediate: number;
  vocab: number; // V
  eps: number;
  ropeTheta: number;
  maxPositions: number;
}
