import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { predictProba } from "./classifier.js";
import type { CorpusGroup } from "./corpus.js";
import type { Example, Split } from "./dataset.js";
import { vectorize } from "./features.js";
import type { ModelSpec } from "./model-specs.js";
import { createSession, predictWithOnnx } from "./onnx-inference.js";
import { createRng } from "./rng.js";
import { trainModel } from "./train-model.js";

/** A small synthetic corpus: spammy and hammy vocabularies with overlap, some HTML-ish and non-ASCII text. */
function syntheticExamples(n: number): Example[] {
  const rng = createRng("synthetic");
  const spamWords = [
    "free",
    "money",
    "click",
    "offer",
    "winner",
    "cash",
    "viagra",
    "$$$",
    "URGENT",
    "crédit",
  ];
  const hamWords = [
    "meeting",
    "patch",
    "kernel",
    "lunch",
    "review",
    "thanks",
    "build",
    "release",
    "Grüße",
    "日本",
  ];
  const common = ["the", "and", "you", "http://example.com", "list", "today", "😀", "ΣΑΣ"];
  const splits: Split[] = ["train", "train", "train", "validation", "test"];
  return Array.from({ length: n }, (_, i) => {
    const spam = i % 3 === 0;
    const words = Array.from({ length: 5 + rng.int(30) }, () => {
      const r = rng.next();
      const pool = r < 0.5 ? (spam ? spamWords : hamWords) : r < 0.6 ? (spam ? hamWords : spamWords) : common;
      return pool[rng.int(pool.length)] ?? "";
    });
    const group: CorpusGroup = spam ? "spam-1" : i % 7 === 1 ? "hard-ham-1" : "easy-ham-1";
    return {
      id: String(i),
      group,
      checksum: createHash("md5").update(String(i)).digest("hex"),
      text: words.join(rng.next() < 0.2 ? "\n" : " "),
      hasHtml: false,
      label: spam ? "spam" : "ham",
      split: splits[i % splits.length] as Split,
    };
  });
}

const SMALL_SPEC: ModelSpec = {
  name: "spam-test",
  version: "9.0.0",
  description: "test model",
  blocks: [
    { tokens: "word", minN: 1, maxN: 2, maxFeaturesPerN: [60, 40], minDf: 2 },
    { tokens: "char", minN: 3, maxN: 4, maxFeaturesPerN: [80, 80], minDf: 2 },
  ],
  train: { hidden: 4, epochs: 3, batchSize: 16, learningRate: 0.02, l2: 1e-5, hardHamWeight: 2, seed: 11 },
  maxSelectionHardHamFpr: 0.1,
};

describe("training a model", () => {
  const examples = syntheticExamples(400);

  it("is deterministic: training twice gives a byte-identical model.onnx", () => {
    const a = trainModel(SMALL_SPEC, examples, "0.0.0", 20_000);
    const b = trainModel(SMALL_SPEC, examples, "0.0.0", 20_000);
    expect(Buffer.from(a.onnx).equals(Buffer.from(b.onnx))).toBe(true);
    const c = trainModel(
      { ...SMALL_SPEC, train: { ...SMALL_SPEC.train, seed: 12 } },
      examples,
      "0.0.0",
      20_000,
    );
    expect(Buffer.from(a.onnx).equals(Buffer.from(c.onnx))).toBe(false);
  });

  it("exports a graph whose outputs equal the trainer's predictions within 1e-5, edge cases included", async () => {
    const trained = trainModel(SMALL_SPEC, examples, "0.0.0", 20_000);
    const session = await createSession(trained.onnx);
    const texts = [
      ...examples.filter((e) => e.split === "test").map((e) => e.text),
      "",
      " \n\t ",
      "!!!",
      "FREE MONEY",
      "İSTANBUL ΣΑΣ Straße",
      "😀😀😀 free 😀",
      "x".repeat(20_000),
    ];
    const onnx = await predictWithOnnx(session, texts, 7);
    const mine = predictProba(trained.params, vectorize(trained.features, texts));
    const threshold = Math.fround(trained.threshold.threshold);
    texts.forEach((_, i) => {
      expect(Math.abs((onnx.spamProbability[i] ?? 0) - (mine[i] ?? 0))).toBeLessThan(1e-5);
      expect(Math.abs((onnx.hamProbability[i] ?? 0) - (1 - (mine[i] ?? 0)))).toBeLessThan(1e-5);
      expect(onnx.labels[i]).toBe((mine[i] ?? 0) >= threshold ? "spam" : "ham");
    });
    // A batch in which no text has a single token still yields one prediction per text.
    const empty = await predictWithOnnx(session, ["", "!!!"]);
    expect(empty.labels).toHaveLength(2);
    expect(Number.isFinite(empty.spamProbability[0])).toBe(true);
    await session.release();
  });

  it("learns the synthetic task", () => {
    const trained = trainModel(SMALL_SPEC, examples, "0.0.0", 20_000);
    const test = examples.filter((e) => e.split === "test");
    const correct = test.filter(
      (e, i) => (trained.trainerScores.test[i] ?? 0) >= 0.5 === (e.label === "spam"),
    );
    expect(correct.length / test.length).toBeGreaterThan(0.9);
  });

  it("exports a binary-weighted block (presence, no idf: spam-lite's features) that equals the trainer within 1e-5", async () => {
    const spec: ModelSpec = {
      ...SMALL_SPEC,
      blocks: [{ tokens: "word", minN: 1, maxN: 1, maxFeaturesPerN: [30], minDf: 2, weighting: "binary" }],
      train: { ...SMALL_SPEC.train, hidden: 0 },
    };
    const trained = trainModel(spec, examples, "0.0.0", 20_000);
    const session = await createSession(trained.onnx);
    const texts = [
      ...examples.filter((e) => e.split === "test").map((e) => e.text),
      "",
      "free",
      "free free free free free free free free",
      "FREE money, free MONEY!",
      "x".repeat(20_000),
    ];
    const onnx = await predictWithOnnx(session, texts, 5);
    const mine = predictProba(trained.params, vectorize(trained.features, texts));
    texts.forEach((_, i) => {
      expect(Math.abs((onnx.spamProbability[i] ?? 0) - (mine[i] ?? 0))).toBeLessThan(1e-5);
    });
    // Presence, not frequency: repeating a word does not change the prediction.
    expect(trained.features.blocks[0]?.ngrams).toContainEqual(["free"]);
    expect(onnx.spamProbability[texts.indexOf("free")]).toBe(
      onnx.spamProbability[texts.indexOf("free free free free free free free free")],
    );
    await session.release();
  });
});
