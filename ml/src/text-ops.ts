/**
 * The trainer's mirror of the ONNX preprocessing ops. The served graph does this work itself (StringNormalizer,
 * com.microsoft Tokenizer); these functions exist so the trainer sees exactly the tokens the graph will see, and a
 * test checks that they agree with ONNX Runtime on every corpus message and on every Unicode code point.
 */

/** The regular expression of the word Tokenizer (RE2 syntax in the graph, the same meaning in JavaScript). */
export const WORD_TOKEN_PATTERN = "[\\p{L}\\p{N}]+";

/**
 * Letters and digits that JavaScript's Unicode tables (Node 20's ICU: Unicode 16 and later) know but the graph's do
 * not (RE2 inside onnxruntime-node 1.30, glibc's towlower). They are too new to occur in the corpus; listing them
 * keeps the mirror exact on every code point, and text-ops.test.ts fails if either side's tables change.
 */
const NEWER_WORD_CHARS =
  "\\u{88f}\\u{c5c}\\u{cdc}\\u{1c89}-\\u{1c8a}\\u{a7cb}-\\u{a7cf}\\u{a7d2}\\u{a7d4}\\u{a7da}-\\u{a7dc}\\u{a7f1}\\u{105c0}-\\u{105f3}\\u{10940}-\\u{10959}\\u{10d40}-\\u{10d65}\\u{10d6f}-\\u{10d85}\\u{10ec2}-\\u{10ec7}\\u{11380}-\\u{11389}\\u{1138b}\\u{1138e}\\u{11390}-\\u{113b5}\\u{113b7}\\u{113d1}\\u{113d3}\\u{116d0}-\\u{116e3}\\u{11bc0}-\\u{11be0}\\u{11bf0}-\\u{11bf9}\\u{11db0}-\\u{11ddb}\\u{11de0}-\\u{11de9}\\u{13460}-\\u{143fa}\\u{16100}-\\u{1611d}\\u{16130}-\\u{16139}\\u{16d40}-\\u{16d6c}\\u{16d70}-\\u{16d79}\\u{16ea0}-\\u{16eb8}\\u{16ebb}-\\u{16ed3}\\u{16ff2}-\\u{16ff6}\\u{187f8}-\\u{187ff}\\u{18cff}\\u{18d09}-\\u{18d1e}\\u{18d80}-\\u{18df2}\\u{1ccf0}-\\u{1ccf9}\\u{1e5d0}-\\u{1e5ed}\\u{1e5f0}-\\u{1e5fa}\\u{1e6c0}-\\u{1e6de}\\u{1e6e0}-\\u{1e6e2}\\u{1e6e4}-\\u{1e6e5}\\u{1e6e7}-\\u{1e6ed}\\u{1e6f0}-\\u{1e6f4}\\u{1e6fe}-\\u{1e6ff}\\u{2b73a}-\\u{2b73f}\\u{2cea2}-\\u{2cead}\\u{323b0}-\\u{33479}";
const NEWER_LOWER_CASE_CHARS =
  /^[\u{1c89}\u{a7cb}-\u{a7cc}\u{a7ce}\u{a7d2}\u{a7d4}\u{a7da}\u{a7dc}\u{10d50}-\u{10d65}\u{16ea0}-\u{16eb8}]$/u;
const WORD_TOKEN = new RegExp(`[[\\p{L}\\p{N}]--[${NEWER_WORD_CHARS}]]+`, "gv");
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
  if (NEWER_LOWER_CASE_CHARS.test(ch)) return ch;
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
