import { describe, expect, it } from "vitest";
import { type GateResult, publishable, QUALITY_GATES, qualityGates } from "./gates.js";
import type { ModelManifest } from "./manifest.js";

const manifest = (name: string, f1: number, hardHamFpr: number, sizeBytes: number) =>
  ({
    name,
    sizeBytes,
    decisionThreshold: 0.5,
    metrics: { f1, hardHamFalsePositiveRate: hardHamFpr },
  }) as unknown as ModelManifest;

describe("quality gates", () => {
  const models: Record<string, ModelManifest> = {
    "spam-v1": manifest("spam-v1", 0.96, 0.04, 200_000),
    "spam-v2": manifest("spam-v2", 0.985, 0.04, 3_000_000),
    "spam-lite": manifest("spam-lite", 0.9, 0.2, 19_000),
  };
  const gates = qualityGates((name) => models[name]);
  const byName = (gate: string) => gates.find((g) => g.gate === gate) as GateResult;

  it("judges every configured model, each gate tagged with its model and whether it blocks", () => {
    expect(gates.map((g) => [g.gate, g.passed, g.blocking])).toEqual([
      ["spam-v2 test F1", true, true],
      ["spam-v2 hard-ham FPR", true, true],
      ["spam-v2 beats spam-v1 on test F1", true, true],
      ["spam-lite test F1 within 0.01 of spam-v1", false, false],
      ["spam-lite hard-ham FPR", false, false],
      ["spam-lite size <= 10 % of spam-v1", true, false],
    ]);
    expect(new Set(gates.map((g) => g.model))).toEqual(new Set(Object.keys(QUALITY_GATES)));
    expect(byName("spam-lite size <= 10 % of spam-v1").detail).toBe("19000 bytes = 9.5 % of 200000");
  });

  it("a candidate's misses are recorded, not blocking; a blocking model's miss stops publication", () => {
    expect(publishable(gates)).toBe(true);
    const worseV2 = qualityGates((name) =>
      name === "spam-v2" ? manifest("spam-v2", 0.95, 0.04, 3_000_000) : models[name],
    );
    expect(worseV2.filter((g) => !g.passed).map((g) => g.gate)).toEqual([
      "spam-v2 test F1",
      "spam-v2 beats spam-v1 on test F1",
      "spam-lite test F1 within 0.01 of spam-v1",
      "spam-lite hard-ham FPR",
    ]);
    expect(publishable(worseV2)).toBe(false);
  });

  it("skips a comparison whose other model has no manifest, and a model without one", () => {
    const alone = qualityGates((name) => (name === "spam-lite" ? models[name] : undefined));
    expect(alone.map((g) => g.gate)).toEqual(["spam-lite hard-ham FPR"]);
  });
});
