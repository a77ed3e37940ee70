import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../cache.js";
import { MAX_MODEL_BYTES, SPLIT_CONFIG } from "../constants.js";
import type { DedupeStats, Example, splitCounts } from "../dataset.js";
import type { Evaluation } from "../evaluate.js";
import type { ModelManifest } from "../manifest.js";
import type { ModelSpec } from "../model-specs.js";
import { renderReportMarkdown } from "../report.js";
import type { TrainedSummary } from "../trained-summary.js";

export interface GateResult {
  gate: string;
  passed: boolean;
  detail: string;
}

export const GATES = { v2MinTestF1: 0.98, v2MaxHardHamFpr: 0.06 } as const;

/** The gates every freshly built model must pass: ONNX Runtime agrees with the trainer, training repeats, size. */
export function integrityGates(
  name: string,
  evaluation: Evaluation,
  summary: TrainedSummary,
  onnxBytes: number,
): GateResult[] {
  return [
    {
      gate: `${name} parity`,
      passed: evaluation.parity.passed,
      detail: `max |onnx - trainer| ${evaluation.parity.maxAbsDifference.toExponential(2)} over ${evaluation.parity.examples} test texts (tolerance ${evaluation.parity.tolerance}), ${evaluation.parity.labelMismatches} label mismatches`,
    },
    {
      gate: `${name} repeatability`,
      passed: summary.repeatability.identical,
      detail: `${summary.repeatability.runs} trainings, sha256 ${[...new Set(summary.repeatability.sha256s)].map((s) => s.slice(0, 12)).join(" vs ")}`,
    },
    {
      gate: `${name} size`,
      passed: onnxBytes <= MAX_MODEL_BYTES,
      detail: `${onnxBytes} bytes (limit ${MAX_MODEL_BYTES})`,
    },
  ];
}

/** The quality gates on test metrics; `manifestOf` gives the fresh manifest of a model, else the bundled one. */
export function qualityGates(manifestOf: (name: string) => ModelManifest | undefined): GateResult[] {
  const gates: GateResult[] = [];
  const v1 = manifestOf("spam-v1");
  const v2 = manifestOf("spam-v2");
  if (v2) {
    gates.push(
      {
        gate: "spam-v2 test F1",
        passed: v2.metrics.f1 >= GATES.v2MinTestF1,
        detail: `${v2.metrics.f1.toFixed(4)} (need >= ${GATES.v2MinTestF1})`,
      },
      {
        gate: "spam-v2 hard-ham FPR",
        passed: v2.metrics.hardHamFalsePositiveRate <= GATES.v2MaxHardHamFpr,
        detail: `${(100 * v2.metrics.hardHamFalsePositiveRate).toFixed(2)} % (need <= ${100 * GATES.v2MaxHardHamFpr} %, threshold ${v2.decisionThreshold} chosen without the test split)`,
      },
    );
  }
  if (v1 && v2) {
    gates.push({
      gate: "spam-v2 beats spam-v1 on test F1",
      passed: v2.metrics.f1 > v1.metrics.f1,
      detail: `${v2.metrics.f1.toFixed(4)} vs ${v1.metrics.f1.toFixed(4)}`,
    });
  }
  return gates;
}

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
  writeAtomic(join(outDir, "report.md"), renderReportMarkdown(m.manifest, report, m.summary));
}
