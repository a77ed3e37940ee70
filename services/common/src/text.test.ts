import { describe, expect, it } from "vitest";
import { codePointLength, isBlankText, textProblem } from "./text.js";

describe("empty text", () => {
  it.each([
    ["nothing", ""],
    ["spaces, tabs and newlines", " \t\r\n \v\f"],
    ["NUL characters", "\0\0\0"],
    ["other C0 and C1 controls and DEL", "\u0001\u001b\u007f\u0085\u009f"],
    ["zero-width space, (non-)joiner, word joiner and BOM", "\u200b\u200c\u200d\u2060\ufeff"],
    ["no-break, ideographic and em spaces", "\u00a0\u3000\u2003\u202f"],
    ["line and paragraph separators", "\u2028\u2029"],
    ["soft hyphen and bidi controls", "\u00ad\u202e\u2066\u200f"],
    ["tag characters (astral, Cf)", "\u{e0041}\u{e007f}"],
    ["variation selectors and Hangul fillers (default ignorable)", "\ufe0f\u{e0100}\u3164\u115f\uffa0"],
    ["unpaired surrogates", "\ud800 \udc00"],
    ["a mixture of all of them", "\0 \u200b\n\ufeff\u2060\u00a0\u200d\t"],
  ])("%s counts as empty", (_what, text) => {
    expect(isBlankText(text)).toBe(true);
    expect(textProblem(text, 100, "text")).toMatch(/^text must not be empty/);
  });

  it.each([
    ["a letter among zero-width characters", "\u200ba\u200b"],
    ["an emoji", "\u{1f600}"],
    ["an emoji with a variation selector", "\u2764\ufe0f"],
    ["punctuation", "."],
    ["a combining mark alone", "\u0301"],
    ["the braille pattern blank (a symbol)", "\u2800"],
    ["a private-use character", "\ue000"],
    ["CJK text", "\u4f60\u597d"],
  ])("%s counts as content", (_what, text) => {
    expect(isBlankText(text)).toBe(false);
    expect(textProblem(text, 100, "text")).toBeUndefined();
  });

  it("names the field", () => {
    expect(textProblem("", 10, "texts[3]")).toBe("texts[3] must not be empty");
    expect(textProblem("\0", 10, "texts[3]")).toBe(
      "texts[3] must not be empty: it has only whitespace, control, format or zero-width characters",
    );
  });
});

describe("NUL inside a text with content", () => {
  it("is refused, naming the position in characters: the model would see only the text before it", () => {
    expect(textProblem("\0free money", 100, "text")).toBe(
      "text contains a NUL character (U+0000) at position 0: the model would see only the text before it",
    );
    expect(textProblem("\u{1f600}\u{1f600}a\0b", 100, "texts[2]")).toMatch(
      /^texts\[2\] contains a NUL .* position 3:/,
    );
    expect(textProblem("free\0", 100, "text")).toMatch(/position 4/);
  });
});

describe("the length limit counts code points", () => {
  const emoji = "\u{1f600}"; // two UTF-16 code units, one character

  it("counts a surrogate pair as one character and an unpaired surrogate as one", () => {
    expect(codePointLength("")).toBe(0);
    expect(codePointLength("abc")).toBe(3);
    expect(codePointLength(emoji.repeat(5))).toBe(5);
    expect(codePointLength(`a${emoji}b`)).toBe(3);
    expect(codePointLength("\ud800")).toBe(1);
    expect(codePointLength("\udc00\ud800")).toBe(2);
    expect(codePointLength(`\ud800${emoji}\udc00`)).toBe(3);
    expect(codePointLength(`${emoji}\ud800`)).toBe(2);
  });

  it("accepts exactly the limit in astral characters and refuses one more", () => {
    expect(textProblem(emoji.repeat(10), 10, "text")).toBeUndefined();
    expect(textProblem(emoji.repeat(11), 10, "text")).toBe(
      "text has 11 characters (Unicode code points); the limit is 10 (max_text_chars)",
    );
    expect(textProblem(`${"a".repeat(9)}${emoji}`, 10, "text")).toBeUndefined();
    expect(textProblem(`${"a".repeat(10)}${emoji}`, 10, "text")).toMatch(/has 11 characters/);
  });

  it("refuses one more BMP character than the limit", () => {
    expect(textProblem("x".repeat(10), 10, "text")).toBeUndefined();
    expect(textProblem("x".repeat(11), 10, "text")).toMatch(/^text has 11 characters/);
  });
});
