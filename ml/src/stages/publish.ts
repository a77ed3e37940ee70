import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../cache.js";
import { SPLIT_CONFIG } from "../constants.js";
import type { DedupeStats, Example, splitCounts } from "../dataset.js";
import type { Evaluation } from "../evaluate.js";
import type { GateResult } from "../gates.js";
import type { ModelManifest } from "../manifest.js";
import type { ModelSpec } from "../model-specs.js";
import { renderReportMarkdown } from "../report.js";
import type { TrainedSummary } from "../trained-summary.js";

export interface ModelFiles {
  spec: ModelSpec;
  manifest: ModelManifest;
  onnx: Uint8Array;
  evaluation: Evaluation;
  summary: TrainedSummary;
  /** The whole dataset (the trainer's test predictions are written for its test split). */
  examples: readonly Example[];
  dedupe: DedupeStats;
  counts: ReturnType<typeof splitCounts>;
  /** This model's gates (integrity and quality), recorded in its report whether they passed or not. */
  gates: readonly GateResult[];
}

/** Writes a model's folder: model.onnx, model.json, report.json, report.md, trainer-predictions.json. */
export function writeModelFiles(outDir: string, m: ModelFiles): void {
  mkdirSync(outDir, { recursive: true });
  writeAtomic(join(outDir, "model.onnx"), m.onnx);
  writeAtomic(join(outDir, "model.json"), `${JSON.stringify(m.manifest, null, 2)}\n`);
  const { testLabels: _labels, ...reportEvaluation } = m.evaluation;
  const report = {
    name: m.spec.name,
    version: m.spec.version,
    description: m.spec.description,
    thresholdChoice: m.summary.threshold,
    ...reportEvaluation,
    sizeBytes: m.manifest.sizeBytes,
    featureDim: m.summary.featureDim,
    trainingHistory: m.summary.history,
    trainingSeconds: m.summary.timings,
    repeatability: m.summary.repeatability,
    dataset: { dedupe: m.dedupe, splitCounts: m.counts, splitConfig: SPLIT_CONFIG },
    gates: m.gates,
  };
  writeAtomic(join(outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  // The trainer's in-memory P(spam) on the test split: lets `npm test` check parity without retraining.
  const testExamples = m.examples.filter((e) => e.split === "test");
  writeAtomic(
    join(outDir, "trainer-predictions.json"),
    `${JSON.stringify({
      split: "test",
      threshold: m.manifest.decisionThreshold,
      examples: testExamples.map((e, i) => ({
        group: e.group,
        id: e.id,
        checksum: e.checksum,
        spamProbability: m.summary.trainerScores.test[i],
      })),
    })}\n`,
  );
  writeAtomic(join(outDir, "report.md"), renderReportMarkdown(m.manifest, report, m.summary, m.gates));
}
