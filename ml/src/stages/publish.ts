import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../cache.js";
import { SPLIT_CONFIG } from "../constants.js";
import { dataPackageVersion } from "../corpus.js";
import type { DedupeStats, Example, splitCounts } from "../dataset.js";
import type { Evaluation } from "../evaluate.js";
import { type GateResult, integrityGates, publishable, qualityGates } from "../gates.js";
import { buildManifest, type ModelManifest } from "../manifest.js";
import type { ModelSpec } from "../model-specs.js";
import { renderReportMarkdown } from "../report.js";
import type { TrainedSummary } from "../trained-summary.js";

/** A model the pipeline trained (and evaluated) in this run. */
export interface BuiltModel {
  spec: ModelSpec;
  summary: TrainedSummary;
  onnxPath: string;
  /** The train stage's cache key (the evaluate stage's input). */
  key: string;
  evaluation?: Evaluation;
}

export interface Published {
  models: Record<string, { manifest: ModelManifest; evaluation: Evaluation; published: boolean }>;
  /** Every gate; `passed` is true when every blocking one passed (non-blocking misses are in the models' reports). */
  gates: GateResult[];
  passed: boolean;
}

/**
 * The publish stage: manifests and gates of the built models, then, when every blocking gate passed, every model's
 * folder in models/<name> (otherwise in the rejected directory, and nothing in models/ changes).
 */
export function publishModels(input: {
  built: readonly BuiltModel[];
  examples: readonly Example[];
  stats: DedupeStats;
  counts: ReturnType<typeof splitCounts>;
  modelsDir: string;
  rejectedDir: string;
  log: (line: string) => void;
}): Published {
  const { built: trained, examples, stats, counts, modelsDir } = input;
  const result: Published = { models: {}, gates: [], passed: false };
  const manifests: Record<string, ModelManifest> = {};
  const onnxOf: Record<string, Uint8Array> = {};
  for (const t of trained) {
    if (t.evaluation === undefined) continue;
    const onnx = readFileSync(t.onnxPath);
    onnxOf[t.spec.name] = onnx;
    manifests[t.spec.name] = buildManifest({
      spec: t.spec,
      onnx,
      summary: t.summary,
      evaluation: t.evaluation,
      dataPackageVersion: dataPackageVersion(),
      splitConfig: SPLIT_CONFIG,
      counts,
      dedupe: stats,
    });
    result.gates.push(...integrityGates(t.spec.name, t.evaluation, t.summary, onnx.length));
  }
  // Cross-model gates use the freshly built model where there is one, the bundled manifest otherwise.
  result.gates.push(
    ...qualityGates((name) => {
      const fresh = manifests[name];
      if (fresh) return fresh;
      const file = join(modelsDir, name, "model.json");
      return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as ModelManifest) : undefined;
    }),
  );
  const passed = publishable(result.gates);
  for (const t of trained) {
    const manifest = manifests[t.spec.name];
    const onnx = onnxOf[t.spec.name];
    if (t.evaluation === undefined || manifest === undefined || onnx === undefined) continue;
    // A model that fails a gate never replaces the bundled one; its candidate goes to ml/.cache/rejected.
    const outDir = join(passed ? modelsDir : input.rejectedDir, t.spec.name);
    writeModelFiles(outDir, {
      spec: t.spec,
      manifest,
      onnx,
      evaluation: t.evaluation,
      summary: t.summary,
      examples,
      dedupe: stats,
      counts,
      gates: result.gates.filter((g) => g.model === t.spec.name),
    });
    result.models[t.spec.name] = { manifest, evaluation: t.evaluation, published: passed };
    const missed = result.gates.filter((g) => g.model === t.spec.name && !g.passed && !g.blocking).length;
    input.log(
      `    ${t.spec.name}: ${passed ? "published to" : "REJECTED, candidate written to"} ${outDir}${missed > 0 ? ` (as a candidate: ${missed} recorded gate miss${missed === 1 ? "" : "es"}, see its report)` : ""}`,
    );
  }
  result.passed = passed;
  return result;
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
