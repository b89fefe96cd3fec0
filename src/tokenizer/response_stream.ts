// Streaming detokenizer for chat responses: turns generated ids, one at a time, into text deltas whose
// concatenation is exactly `responseFromIds(all ids so far)` once `finish()` is called — the string
// `InternVLChatModel.chat()` would return.
//
// Each step re-decodes every id (decoding is contextual: byte-fallback runs, clean_up_tokenization, spaces
// around added tokens) and emits only the prefix no later id can change. Held back at the tail:
//  - byte-fallback pieces that may still complete a UTF-8 character (they show as U+FFFD until then);
//  - the end of the open piece run where clean_up_tokenization may still change: every pattern starts with
//    a space and is at most 4 characters, so it is cut after the last 3 space-free characters (a replacement
//    made now can even be undone later: " ' " → "'" no longer applies once " ," claims its second space);
//  - whitespace, which `.strip()` removes at the very end;
//  - a proper prefix of "<|im_end|>", where the response would be cut.
// Re-decoding is O(generated ids) per step, negligible next to a model step for chat-length responses.
import type { ChatTokenizer } from "./chat_tokenizer.ts";
import { IM_END } from "./chat_tokenizer.ts";
import { cleanUpTokenization, isPythonSpace, pythonLstrip } from "./python_text.ts";
import { bytePieceValue } from "./sentencepiece_decode.ts";

const IM_END_PREFIXES = [...IM_END].map((_, i) => IM_END.slice(0, i)).slice(1).reverse();

/**
 * Largest b such that clean_up_tokenization(raw) starts with clean_up_tokenization(raw[0:b]) whatever is
 * appended: no space among raw[b-3..b-1], so no pattern (space + ≤3 chars) can straddle b — and deleting
 * spaces never moves a space into that window, so this holds through all ten sequential replacements.
 */
function cleanUpSafeCut(raw: string): number {
  let b = raw.length;
  while (b > 0 && raw.slice(Math.max(0, b - 3), b).includes(" ")) b--;
  return b;
}

export class ResponseStream {
  readonly #tok: ChatTokenizer;
  readonly #ids: number[] = [];
  #emitted = "";
  #done = false;

  constructor(tok: ChatTokenizer) {
    this.#tok = tok;
  }

  /** Text emitted so far. */
  get text(): string {
    return this.#emitted;
  }

  /** True once the response is final: `<|im_end|>` was decoded or `finish()` was called. */
  get done(): boolean {
    return this.#done;
  }

  /** Adds one generated id; returns the new text (possibly ""). Ids after the end are ignored. */
  push(id: number): string {
    if (this.#done) return "";
    this.#ids.push(id);
    const { settled, openRaw } = this.#tok.decodeOpenTail(this.#ids);
    const sep = settled.length > 0 && openRaw !== null ? " " : "";
    const full = settled + sep + cleanUpTokenization(openRaw ?? "");
    if (full.includes(IM_END)) return this.#emitUpTo(this.#tok.responseFromIds(this.#ids), true);
    let stable = settled;
    if (openRaw !== null) {
      const raw = openRaw.slice(0, openRaw.length - this.#incompleteTrailingBytes());
      stable += sep + cleanUpTokenization(raw.slice(0, cleanUpSafeCut(raw)));
    }
    stable = pythonLstrip(stable);
    for (let changed = true; changed;) {
      changed = false;
      while (stable.length > 0 && isPythonSpace(stable[stable.length - 1])) {
        stable = stable.slice(0, -1);
        changed = true;
      }
      const tail = IM_END_PREFIXES.find((t) => stable.endsWith(t));
      if (tail !== undefined) {
        stable = stable.slice(0, stable.length - tail.length);
        changed = true;
      }
    }
    return this.#emitUpTo(stable, false);
  }

  /** Ends the response (eos, length limit or cancellation); returns the remaining text. */
  finish(): string {
    if (this.#done) return "";
    return this.#emitUpTo(this.#tok.responseFromIds(this.#ids), true);
  }

  #emitUpTo(text: string, final: boolean): string {
    if (final) this.#done = true;
    if (text.length <= this.#emitted.length && !final) return "";
    if (!text.startsWith(this.#emitted)) {
      // Means a hold-back rule above is missing a case; emitted text cannot be taken back.
      throw new Error(
        `ResponseStream emitted ${JSON.stringify(this.#emitted)} but the response is now ${
          JSON.stringify(text)
        }`,
      );
    }
    const delta = text.slice(this.#emitted.length);
    this.#emitted = text;
    return delta;
  }

  /** How many trailing byte-fallback ids form an unfinished UTF-8 sequence (each decodes to one U+FFFD). */
  #incompleteTrailingBytes(): number {
    let trail = 0;
    for (let i = this.#ids.length - 1; i >= 0 && trail <= 3; i--) {
      const id = this.#ids[i];
      if (this.#tok.isSpecialId(id)) continue; // skipped by decode, so bytes around it are adjacent
      const b = bytePieceValue(this.#tok.idToToken(id));
      if (b < 0) return 0;
      if ((b & 0xc0) === 0x80) {
        trail++;
        continue;
      }
      const need = (b & 0xe0) === 0xc0 ? 1 : (b & 0xf0) === 0xe0 ? 2 : (b & 0xf8) === 0xf0 ? 3 : 0;
      return trail < need ? trail + 1 : 0;
    }
    return 0;
  }
}
