/**
 * The trainer's mirror of the ONNX preprocessing ops. The served graph does this work itself (StringNormalizer,
 * com.microsoft Tokenizer); these functions exist so the trainer sees exactly the tokens the graph will see, and a
 * test checks that they agree with ONNX Runtime on every corpus message and on every Unicode code point.
 */

/** The regular expression of the word Tokenizer (RE2 syntax in the graph, the same meaning in JavaScript). */
export const WORD_TOKEN_PATTERN = "[\\p{L}\\p{N}]+";
const WORD_TOKEN = new RegExp(WORD_TOKEN_PATTERN, "gu");
// A character at or above U+0080.
const NON_ASCII = /[^\p{ASCII}]/u;

const lowerCache = new Map<number, string>();

/**
 * Lower-cases like ONNX StringNormalizer with `locale: "C.UTF-8"`, which maps one code point to one code point
 * (glibc `towlower`). JavaScript's full case mapping differs only where it expands a code point (U+0130 İ → "i̇")
 * or looks at context (final sigma), so the mapping is applied code point by code point and expansions are replaced
 * by the simple mapping.
 */
export function lowerCase(text: string): string {
  if (!NON_ASCII.test(text)) return text.toLowerCase();
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x80) {
      out += ch.toLowerCase();
      continue;
    }
    let lowered = lowerCache.get(cp);
    if (lowered === undefined) {
      lowered = lowerCodePoint(ch, cp);
      lowerCache.set(cp, lowered);
    }
    out += lowered;
  }
  return out;
}

function lowerCodePoint(ch: string, cp: number): string {
  if (cp === 0x130) return "i";
  const lowered = ch.toLowerCase();
  // A lower-casing that changes the number of code points is a full (not simple) mapping: towlower keeps the char.
  return [...lowered].length === 1 ? lowered : ch;
}

/** Word tokens: maximal runs of letters and digits (what the Tokenizer with `tokenexp` yields). */
export function wordTokens(lower: string): string[] {
  return lower.match(WORD_TOKEN) ?? [];
}

/** Character tokens: one per Unicode code point (what the Tokenizer with `separators: [""]` yields). */
export function charTokens(lower: string): string[] {
  return Array.from(lower);
}
