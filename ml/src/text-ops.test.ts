import type { InferenceSession } from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPreprocessingProbe } from "./onnx-export.js";
import { createSession, runBatch } from "./onnx-inference.js";
import { charTokens, lowerCase, wordTokens } from "./text-ops.js";

/** Every Unicode scalar value of the Basic Multilingual Plane and a slice of the supplementary planes. */
function codePointSample(): string[] {
  const out: string[] = [];
  const add = (from: number, to: number) => {
    for (let cp = from; cp <= to; cp++) if (cp < 0xd800 || cp > 0xdfff) out.push(String.fromCodePoint(cp));
  };
  add(1, 0xffff);
  add(0x10000, 0x1fbff);
  return out;
}

const SAMPLES = [
  "Hello WORLD! Straße İstanbul ΣΑΣ ΌΛΑ",
  "FREE $$$ money!!! http://EXAMPLE.com/Path?Q=1",
  "日本語のテキスト、スパムではありません",
  "emoji 😀👍 and 𝐁𝐎𝐋𝐃 math letters",
  "tabs\tand\nnew\r\nlines   and  spaces",
  "",
  "   ",
  "!!!",
];

describe("the trainer's mirror of the graph's preprocessing", () => {
  let lower: InferenceSession;
  let words: InferenceSession;
  let chars: InferenceSession;
  beforeAll(async () => {
    lower = await createSession(buildPreprocessingProbe("lower"));
    words = await createSession(buildPreprocessingProbe("word"));
    chars = await createSession(buildPreprocessingProbe("char"));
  });
  afterAll(async () => {
    await Promise.all([lower.release(), words.release(), chars.release()]);
  });

  const tokensOf = async (session: InferenceSession, texts: string[]) => {
    const out = (await runBatch(session, texts)).tokens;
    if (out === undefined) throw new Error("no tokens output");
    const data = out.data as string[];
    const width = out.dims.length === 2 ? Number(out.dims[1]) : 1;
    return texts.map((_, i) => data.slice(i * width, (i + 1) * width).filter((t) => t !== ""));
  };

  it("lower-cases every code point exactly like StringNormalizer with locale C.UTF-8", async () => {
    const cps = codePointSample();
    const onnx = (await runBatch(lower, cps)).tokens?.data as string[];
    const mismatches = cps.filter((c, i) => onnx[i] !== lowerCase(c));
    expect(mismatches.map((c) => c.codePointAt(0)?.toString(16))).toEqual([]);
  });

  it("lower-cases whole texts like the graph, including context-sensitive letters", async () => {
    const onnx = (await runBatch(lower, SAMPLES)).tokens?.data as string[];
    expect(SAMPLES.map(lowerCase)).toEqual(onnx);
  });

  it("splits words exactly like the Tokenizer's RE2 expression, on every code point", async () => {
    const cps = codePointSample();
    // One text per 64 code points, each surrounded by letters so that joins and splits both show.
    const texts: string[] = [];
    for (let i = 0; i < cps.length; i += 64) texts.push(cps.slice(i, i + 64).join("a"));
    const lowered = texts.map(lowerCase);
    const onnx = await tokensOf(words, lowered);
    lowered.forEach((t, i) => {
      expect(wordTokens(t), `text ${i}`).toEqual(onnx[i]);
    });
  });

  it("splits words and characters like the graph on mixed batches", async () => {
    const lowered = SAMPLES.map(lowerCase);
    expect(lowered.map(wordTokens)).toEqual(await tokensOf(words, lowered));
    expect(lowered.map(charTokens)).toEqual(await tokensOf(chars, lowered));
  });
});
