// SentencePieceProcessor.decode(pieces) (sentencepiece_processor.cc, v0.1.99–0.2.0): the text a run of
// ordinary pieces stands for. Reimplemented rather than taken from the JS library's decoder chain because
// the slow InternLM2 tokenizer's output depends on two SentencePiece details that chain does not share:
// every structurally invalid byte of a byte-fallback run becomes its own U+FFFD, and only the first ▁ of the
// text is dropped (and only when the model adds a dummy prefix or removes extra whitespace).
import { PieceType } from "./sentencepiece_model.ts";

const SPACE_SYMBOL = "\u2581";
const REPLACEMENT = "\uFFFD";
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export interface PieceDecoderSpec {
  /** index = id */
  pieces: readonly { piece: string; type: PieceType }[];
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  unkSurface: string;
}

export class PieceDecoder {
  readonly #spec: PieceDecoderSpec;
  readonly #ids = new Map<string, number>();
  readonly #unkId: number;

  constructor(spec: PieceDecoderSpec) {
    this.#spec = spec;
    spec.pieces.forEach((p, id) => this.#ids.set(p.piece, id));
    this.#unkId = spec.pieces.findIndex((p) => p.type === PieceType.UNKNOWN);
  }

  /** Decodes piece strings as SentencePiece does (unknown strings map to <unk>, which echoes them). */
  decode(pieces: readonly string[]): string {
    const { addDummyPrefix, removeExtraWhitespaces } = this.#spec;
    let text = "";
    let bytes: number[] = [];
    let isBosWs = true; // still expecting the dummy-prefix ▁ to consume
    let bosWsSeen = false;
    for (const piece of pieces) {
      const id = this.#ids.get(piece) ?? this.#unkId;
      const type = id >= 0 ? this.#spec.pieces[id].type : PieceType.UNKNOWN;
      if (type === PieceType.BYTE) {
        bytes.push(parseInt(BYTE_PIECE.exec(piece)![1], 16));
        continue;
      }
      text += decodeUtf8LikeSentencePiece(bytes);
      bytes = [];
      if (bosWsSeen || text.length > 0) isBosWs = false;
      bosWsSeen = false;
      if (type === PieceType.CONTROL) continue;
      if (type === PieceType.UNKNOWN) {
        text += piece === this.#spec.pieces[this.#unkId]?.piece ? this.#spec.unkSurface : piece;
        continue;
      }
      let surface = piece;
      if (isBosWs && (addDummyPrefix || removeExtraWhitespaces) && surface.startsWith(SPACE_SYMBOL)) {
        surface = surface.slice(SPACE_SYMBOL.length);
        bosWsSeen = !removeExtraWhitespaces;
      }
      text += surface.replaceAll(SPACE_SYMBOL, " ");
    }
    return text + decodeUtf8LikeSentencePiece(bytes);
  }
}

/** Whether `piece` is a byte-fallback piece `<0xXX>`; returns the byte or -1. */
export function bytePieceValue(piece: string): number {
  const m = BYTE_PIECE.exec(piece);
  return m ? parseInt(m[1], 16) : -1;
}

/**
 * SentencePiece's `IsValidDecodeUTF8` loop: a valid, shortest-form sequence for a scalar value decodes to
 * that character; anything else consumes ONE byte and yields one U+FFFD (unlike WHATWG TextDecoder, which
 * replaces a truncated multi-byte prefix with a single U+FFFD).
 */
export function decodeUtf8LikeSentencePiece(bytes: readonly number[]): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const [cp, len] = decodeOne(bytes, i);
    out += cp < 0 ? REPLACEMENT : String.fromCodePoint(cp);
    i += len;
  }
  return out;
}

const isTrail = (b: number | undefined) => b !== undefined && (b & 0xc0) === 0x80;
const isScalar = (c: number) => c < 0xd800 || (c >= 0xe000 && c <= 0x10ffff);

/** Returns [code point or -1, bytes consumed]. Mirrors sentencepiece `string_util::DecodeUTF8`. */
function decodeOne(b: readonly number[], i: number): [number, number] {
  const b0 = b[i];
  if (b0 < 0x80) return [b0, 1];
  if ((b0 & 0xe0) === 0xc0 && isTrail(b[i + 1])) {
    const cp = ((b0 & 0x1f) << 6) | (b[i + 1] & 0x3f);
    if (cp >= 0x80) return [cp, 2];
  } else if ((b0 & 0xf0) === 0xe0 && isTrail(b[i + 1]) && isTrail(b[i + 2])) {
    const cp = ((b0 & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
    if (cp >= 0x800 && isScalar(cp)) return [cp, 3];
  } else if ((b0 & 0xf8) === 0xf0 && isTrail(b[i + 1]) && isTrail(b[i + 2]) && isTrail(b[i + 3])) {
    const cp = ((b0 & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
    if (cp >= 0x10000 && isScalar(cp)) return [cp, 4];
  }
  return [-1, 1];
}
