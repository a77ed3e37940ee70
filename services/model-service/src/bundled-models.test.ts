import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./config.js";
import { loadModel } from "./model.js";

/** The model versions bundled under models/ (written by the training pipeline in ml/). */
const MODELS = path.join(REPO_ROOT, "models");
const bundled = existsSync(MODELS)
  ? readdirSync(MODELS).filter((name) => existsSync(path.join(MODELS, name, "model.json")))
  : [];

describe("the bundled models", () => {
  it("every model under models/ passes start-up validation and classifies spam and ham", async () => {
    // Until the pipeline has written them, there is nothing to check here (the fixture model stands in elsewhere).
    for (const name of bundled) {
      const model = await loadModel(path.join(MODELS, name));
      try {
        expect(model.info.labels).toContain("spam");
        const output = await model.classify([
          "Congratulations! You have WON a FREE prize. Click here now to claim your $1000 cash reward!!!",
          "Hi Bob, are we still on for the project meeting tomorrow at 10? I attached the agenda.",
        ]);
        expect(output.labels).toHaveLength(2);
        for (const label of output.labels) expect(model.info.labels).toContain(label);
        const width = model.info.labels.length;
        for (let row = 0; row < 2; row++) {
          const sum = output.probabilities
            .subarray(row * width, row * width + width)
            .reduce((a, b) => a + b, 0);
          expect(sum).toBeCloseTo(1, 3);
        }
      } finally {
        await model.close();
      }
    }
    expect(bundled.every((name) => existsSync(path.join(MODELS, name, "model.onnx")))).toBe(true);
  });
});
