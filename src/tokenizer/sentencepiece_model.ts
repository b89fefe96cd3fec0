// Reads a SentencePiece `tokenizer.model` (a serialized `sentencepiece.ModelProto`).
// Mirrors the subset of google/sentencepiece `src/sentencepiece_model.proto` that encoding and decoding
// depend on; field numbers and proto2 defaults are copied from that file (unknown fields are skipped by the
// decoder, so newer or older files still parse).
import protobuf from "protobufjs";

const SENTENCEPIECE_PROTO = `
syntax = "proto2";
package sentencepiece;

message TrainerSpec {
  enum ModelType { UNIGRAM = 1; BPE = 2; WORD = 3; CHAR = 4; }
  optional ModelType model_type = 3 [default = UNIGRAM];
  optional int32 vocab_size = 4 [default = 8000];
  optional bool treat_whitespace_as_suffix = 24 [default = false];
  optional bool split_digits = 25 [default = false];
  optional bool byte_fallback = 35 [default = false];
  optional int32 unk_id = 40 [default = 0];
  optional int32 bos_id = 41 [default = 1];
  optional int32 eos_id = 42 [default = 2];
  optional int32 pad_id = 43 [default = -1];
  optional string unk_surface = 44 [default = " \u2047 "];
}

message NormalizerSpec {
  optional string name = 1;
  optional bytes precompiled_charsmap = 2;
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
  optional bool escape_whitespaces = 5 [default = true];
}

message ModelProto {
  message SentencePiece {
    enum Type { NORMAL = 1; UNKNOWN = 2; CONTROL = 3; USER_DEFINED = 4; UNUSED = 5; BYTE = 6; }
    optional string piece = 1;
    optional float score = 2;
    optional Type type = 3 [default = NORMAL];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;

/** Piece types, numbered as in sentencepiece_model.proto. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceType = (typeof PieceType)[keyof typeof PieceType];

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  /** index = token id */
  pieces: SentencePiece[];
  trainer: {
    modelType: "unigram" | "bpe" | "word" | "char";
    byteFallback: boolean;
    splitDigits: boolean;
    treatWhitespaceAsSuffix: boolean;
    unkSurface: string;
  };
  normalizer: {
    name: string;
    /** empty when the model normalizes nothing (name "identity") */
    precompiledCharsmap: Uint8Array;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

const MODEL_TYPES = { 1: "unigram", 2: "bpe", 3: "word", 4: "char" } as const;

let modelProtoType: protobuf.Type | null = null;

function modelProto(): protobuf.Type {
  modelProtoType ??= protobuf.parse(SENTENCEPIECE_PROTO, { keepCase: true }).root.lookupType(
    "sentencepiece.ModelProto",
  );
  return modelProtoType;
}

/** Decodes the bytes of a `tokenizer.model` file. Proto2 defaults apply to absent fields. */
export function parseSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  const type = modelProto();
  // deno-lint-ignore no-explicit-any
  let raw: any;
  try {
    raw = type.toObject(type.decode(bytes), { defaults: true, enums: Number, bytes: Uint8Array });
  } catch (err) {
    throw new Error(`tokenizer.model is not a SentencePiece ModelProto: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw.pieces) || raw.pieces.length === 0) {
    throw new Error("tokenizer.model has no pieces; is it really a SentencePiece model?");
  }
  // Sub-messages are absent in some hand-made models; toObject then leaves them null, so fall back to the
  // proto defaults by decoding an empty message of that type.
  const trainer = raw.trainer_spec ?? type.lookupType("sentencepiece.TrainerSpec").toObject(
    type.lookupType("sentencepiece.TrainerSpec").create({}),
    { defaults: true, enums: Number },
  );
  const normalizer = raw.normalizer_spec ?? type.lookupType("sentencepiece.NormalizerSpec").toObject(
    type.lookupType("sentencepiece.NormalizerSpec").create({}),
    { defaults: true, enums: Number, bytes: Uint8Array },
  );
  const modelType = MODEL_TYPES[trainer.model_type as keyof typeof MODEL_TYPES];
  if (modelType === undefined) {
    throw new Error(`tokenizer.model has unknown model_type ${trainer.model_type}`);
  }
  return {
    pieces: raw.pieces.map((p: { piece: string; score: number; type: number }) => ({
      piece: p.piece,
      score: p.score,
      type: p.type as PieceType,
    })),
    trainer: {
      modelType,
      byteFallback: trainer.byte_fallback,
      splitDigits: trainer.split_digits,
      treatWhitespaceAsSuffix: trainer.treat_whitespace_as_suffix,
      unkSurface: trainer.unk_surface,
    },
    normalizer: {
      name: normalizer.name ?? "",
      precompiledCharsmap: normalizer.precompiled_charsmap ?? new Uint8Array(0),
      addDummyPrefix: normalizer.add_dummy_prefix,
      removeExtraWhitespaces: normalizer.remove_extra_whitespaces,
      escapeWhitespaces: normalizer.escape_whitespaces,
    },
  };
}
