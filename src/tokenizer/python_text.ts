// Python string behaviour the reference post-processing relies on, where JavaScript differs.

// str.isspace() code points. JS `\s` differs: it lacks U+001C–U+001F and U+0085 and adds U+FEFF. The
// difference is visible in the fixture: a response starting with byte 0x1D loses it to `.strip()`.
const PY_SPACE = new Set(
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" +
    "\u200a\u2028\u2029\u202f\u205f\u3000",
);

/** Python `ch.isspace()` for one UTF-16 unit (all Python whitespace is in the BMP). */
export function isPythonSpace(ch: string): boolean {
  return PY_SPACE.has(ch);
}

/** Python `s.lstrip()`. */
export function pythonLstrip(s: string): string {
  let i = 0;
  while (i < s.length && PY_SPACE.has(s[i])) i++;
  return s.slice(i);
}

/** Python `s.rstrip()`. */
export function pythonRstrip(s: string): string {
  let j = s.length;
  while (j > 0 && PY_SPACE.has(s[j - 1])) j--;
  return s.slice(0, j);
}

/** Python `s.strip()`. */
export function pythonStrip(s: string): string {
  return pythonRstrip(pythonLstrip(s));
}

/**
 * transformers `PreTrainedTokenizerBase.clean_up_tokenization`, which InternLM2Tokenizer's
 * `convert_tokens_to_string` applies unconditionally. Each `str.replace` is global, left to right, in order.
 */
export const CLEAN_UP_REPLACEMENTS: readonly (readonly [string, string])[] = [
  [" .", "."],
  [" ?", "?"],
  [" !", "!"],
  [" ,", ","],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];

export function cleanUpTokenization(s: string): string {
  for (const [from, to] of CLEAN_UP_REPLACEMENTS) s = s.replaceAll(from, to);
  return s;
}
