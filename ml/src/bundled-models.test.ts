import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { InferenceSession } from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./child-process.js";
import { MAX_MODEL_BYTES, MAX_TEXT_CHARS, SPLIT_CONFIG } from "./constants.js";
import { loadRawCorpus } from "./corpus.js";
import { buildDataset, type Example } from "./dataset.js";
import type { ModelManifest } from "./manifest.js";
import { MODEL_SPECS } from "./model-specs.js";
import { LABELS } from "./onnx-export.js";
import { createSession, predictWithOnnx, runBatch } from "./onnx-inference.js";
import { sha256Hex } from "./rng.js";
import { parseCorpus } from "./stages/parse.js";

interface TrainerPredictions {
  threshold: number;
  examples: Array<{ group: string; id: string; checksum: string; spamProbability: number }>;
}

const modelDir = (name: string) => join(REPO_ROOT, "models", name);
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;

let testSplit: Example[] = [];

beforeAll(async () => {
  const records = await parseCorpus(loadRawCorpus());
  testSplit = buildDataset(records, SPLIT_CONFIG).examples.filter((e) => e.split === "test");
}, 120_000);

describe.each(MODEL_SPECS.map((s) => s.name))("the bundled model %s", (name) => {
  const manifest = readJson<ModelManifest>(join(modelDir(name), "model.json"));
  const onnx = readFileSync(join(modelDir(name), "model.onnx"));
  let session: InferenceSession;

  beforeAll(async () => {
    session = await createSession(onnx);
  });

  it("matches its manifest: sha256, size, labels, names, limits", () => {
    expect(sha256Hex(onnx)).toBe(manifest.sha256);
    expect(onnx.length).toBe(manifest.sizeBytes);
    expect(onnx.length).toBeLessThanOrEqual(MAX_MODEL_BYTES);
    expect(manifest.name).toBe(name);
    expect(manifest.labels).toEqual([...LABELS]);
    expect(manifest.inputName).toBe("text");
    expect(manifest.outputs).toEqual({ label: "label", probabilities: "probabilities" });
    expect(manifest.maxTextChars).toBe(MAX_TEXT_CHARS);
    expect(manifest.decisionThreshold).toBeGreaterThan(0);
    expect(manifest.decisionThreshold).toBeLessThan(1);
    expect(manifest.provenance.dataPackageVersion).toBe("0.2.3");
  });

  it("loads in onnxruntime-node with a string [N] input and string [N] / float32 [N, 2] outputs", async () => {
    expect(session.inputNames).toEqual(["text"]);
    expect([...session.outputNames].sort()).toEqual(["label", "probabilities"]);
    const texts = [
      "Win a FREE cruise now!!! Click http://example.com",
      "Are we still meeting for lunch tomorrow?",
      "!",
    ];
    const out = await runBatch(session, texts);
    expect(out.label?.type).toBe("string");
    expect(out.label?.dims).toEqual([3]);
    expect(out.probabilities?.type).toBe("float32");
    expect(out.probabilities?.dims).toEqual([3, 2]);
    const probs = out.probabilities?.data as Float32Array;
    for (let i = 0; i < texts.length; i++)
      expect((probs[2 * i] ?? 0) + (probs[2 * i + 1] ?? 0)).toBeCloseTo(1, 5);
  });

  it("applies the manifest's decision threshold inside the graph", async () => {
    const out = await predictWithOnnx(
      session,
      testSplit.map((e) => e.text),
    );
    const threshold = Math.fround(manifest.decisionThreshold);
    out.labels.forEach((label, i) => {
      expect(label).toBe((out.spamProbability[i] ?? 0) >= threshold ? "spam" : "ham");
    });
  });

  it("reproduces the trainer's in-memory predictions on the whole test split within 1e-5", async () => {
    const file = join(modelDir(name), "trainer-predictions.json");
    expect(existsSync(file)).toBe(true);
    const trainer = readJson<TrainerPredictions>(file);
    expect(trainer.examples.map((e) => e.checksum)).toEqual(testSplit.map((e) => e.checksum));
    const out = await predictWithOnnx(
      session,
      testSplit.map((e) => e.text),
    );
    let worst = 0;
    trainer.examples.forEach((e, i) => {
      worst = Math.max(worst, Math.abs((out.spamProbability[i] ?? Number.NaN) - e.spamProbability));
    });
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});
