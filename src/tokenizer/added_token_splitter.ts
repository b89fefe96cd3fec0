// Splits text on added tokens the way transformers' slow tokenizers do (`Trie.split` in
// tokenization_utils.py): the match that starts leftmost wins, and among those the longest. Text between
// matches is returned as plain chunks; empty chunks are dropped, as `tokenize()` skips them.

export type Chunk = { text: string; token?: undefined } | { token: string; text?: undefined };

export class AddedTokenSplitter {
  /** first UTF-16 unit → candidate tokens, longest first */
  readonly #byFirst = new Map<string, string[]>();

  constructor(tokens: Iterable<string>) {
    for (const t of new Set(tokens)) {
      if (t.length === 0) continue;
      const list = this.#byFirst.get(t[0]) ?? [];
      list.push(t);
      this.#byFirst.set(t[0], list);
    }
    for (const list of this.#byFirst.values()) list.sort((a, b) => b.length - a.length);
  }

  split(text: string): Chunk[] {
    const out: Chunk[] = [];
    let plainStart = 0;
    let i = 0;
    while (i < text.length) {
      const match = this.#byFirst.get(text[i])?.find((t) => text.startsWith(t, i));
      if (match === undefined) {
        i++;
        continue;
      }
      if (i > plainStart) out.push({ text: text.slice(plainStart, i) });
      out.push({ token: match });
      i += match.length;
      plainStart = i;
    }
    if (text.length > plainStart) out.push({ text: text.slice(plainStart) });
    return out;
  }
}
