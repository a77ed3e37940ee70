/**
 * The input rules for a text to classify, shared by every service that checks texts (model-service today;
 * app-service can use the same rule at the edge), so that a text is refused for the same reason everywhere.
 *
 * **Empty.** A text counts as empty when it has no code point outside these sets (Unicode general categories and
 * properties, as JavaScript's `\p{…}` implements them):
 * - `Cc` control characters (NUL, tab, newline, DEL, the C1 controls …),
 * - `Cf` format characters (U+00AD soft hyphen, U+200B zero-width space, U+200C/U+200D zero-width (non-)joiner,
 *   U+2060 word joiner, U+FEFF byte-order mark, the bidi controls, the tag characters …),
 * - `Cs` unpaired surrogates (not characters at all; they only reach us from a JSON string such as `"\ud800"`),
 * - `Z` separators: `Zs` spaces (U+0020, U+00A0, U+2000–U+200A, U+3000 …), `Zl` U+2028, `Zp` U+2029,
 * - `White_Space` (adds the whitespace controls and U+0085, already covered above, for clarity),
 * - `Default_Ignorable_Code_Point`: what Unicode says renderers show as nothing, such as the variation selectors
 *   and the Hangul fillers U+115F, U+1160, U+3164, U+FFA0.
 *
 * Everything else is content, including private-use and unassigned code points and blank-looking symbols such as
 * U+2800 BRAILLE PATTERN BLANK (`So`): they are characters a model may see.
 *
 * **NUL.** A text that has content but also a NUL character (U+0000) is refused too: ONNX Runtime passes string
 * tensors to the model as C strings, so the model sees only the part before the first NUL (measured with spam-v1:
 * `"\0free money now winner"` is ham at 0.60, without the NUL spam at 0.81). Accepting it would let a caller hide
 * any text from the model behind one NUL.
 *
 * **Length.** The limit (a model's `maxTextChars`) counts characters as Unicode code points, as the message says: an
 * emoji outside the Basic Multilingual Plane is one character although JavaScript's `length` counts it as two UTF-16
 * code units. An unpaired surrogate counts as one.
 */

/** Matches a code point that counts as content (see above). */
const CONTENT = /[^\p{Cc}\p{Cf}\p{Cs}\p{Z}\p{White_Space}\p{Default_Ignorable_Code_Point}]/u;

/** True when `text` has no content: only control, format, separator, whitespace or ignorable code points. */
export function isBlankText(text: string): boolean {
  return !CONTENT.test(text);
}

/** The number of Unicode code points in `text` (a surrogate pair is one; an unpaired surrogate is one too). */
export function codePointLength(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/**
 * Why `text` cannot be classified, or undefined when it can: empty (see above) or longer than `maxChars` code
 * points, or containing a NUL. `field` names the input in the message (`text`, `texts[3]`).
 */
export function textProblem(text: string, maxChars: number, field: string): string | undefined {
  if (isBlankText(text)) {
    return text.length === 0
      ? `${field} must not be empty`
      : `${field} must not be empty: it has only whitespace, control, format or zero-width characters`;
  }
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    return `${field} contains a NUL character (U+0000) at position ${codePointLength(text.slice(0, nul))}: the model would see only the text before it`;
  }
  // A string of n UTF-16 code units has at most n code points, so short texts need no counting.
  if (text.length > maxChars) {
    const chars = codePointLength(text);
    if (chars > maxChars) {
      return `${field} has ${chars} characters (Unicode code points); the limit is ${maxChars} (max_text_chars)`;
    }
  }
  return undefined;
}
