import { MAX_TEXT_CHARS } from "./constants.js";
import { DATA_PACKAGE } from "./corpus.js";
import type { DedupeStats, splitCounts } from "./dataset.js";
import type { Evaluation } from "./evaluate.js";
import type { ModelSpec } from "./model-specs.js";
import {
  CONTRIB_DOMAIN,
  type ContribOp,
  INPUT_NAME,
  IR_VERSION,
  LABELS,
  OPSET,
  OUTPUT_LABEL,
  OUTPUT_PROBABILITIES,
} from "./onnx-export.js";
import { sha256Hex } from "./rng.js";
import type { TrainedSummary } from "./trained-summary.js";

/** `models/<name>/model.json`: what model-service needs to load, validate and describe a bundled model. */
export interface ModelManifest {
  name: string;
  version: string;
  description: string;
  /** sha256 (hex) of model.onnx. */
  sha256: string;
  sizeBytes: number;
  /** Output label order; probabilities[:, i] is the probability of labels[i]. */
  labels: string[];
  /** Longest accepted text, in UTF-16 code units (JavaScript string length). */
  maxTextChars: number;
  /** P(spam) at or above which the graph's `label` output is "spam" (already applied inside the graph). */
  decisionThreshold: number;
  /** ai.onnx opset version. */
  opset: number;
  irVersion: number;
  opsetImports: Array<{ domain: string; version: number }>;
  /** Non-standard operators the graph needs (all are built into ONNX Runtime's default CPU build). */
  contribOps: ContribOp[];
  inputName: string;
  input: { name: string; dtype: "string"; shape: ["N"] };
  outputs: { label: string; probabilities: string };
  outputSpecs: {
    label: { dtype: "string"; shape: ["N"] };
    probabilities: { dtype: "float32"; shape: ["N", 2] };
  };
  metrics: {
    split: "test";
    examples: number;
    accuracy: number;
    precision: number;
    recall: number;
    f1: number;
    rocAuc: number;
    hardHamFalsePositiveRate: number;
    hardHamExamples: number;
    confusionMatrix: { labels: ["ham", "spam"]; matrix: [[number, number], [number, number]] };
    /** F1 of the out-of-fold cross-validation predictions over train + validation. */
    crossValidationF1: number;
    parityMaxAbsDifference: number;
    latencyP50Ms: number;
    latencyP99Ms: number;
    batch32P50Ms: number;
    batch32P99Ms: number;
  };
  provenance: {
    gitCommit: string;
    /** True when ml/src had uncommitted changes at training time. */
    gitDirty: boolean;
    pipeline: string;
    dataPackage: string;
    dataPackageVersion: string;
    seed: number;
    split: {
      trainFraction: number;
      validationFraction: number;
      testFraction: number;
      examples: Record<string, number>;
    };
    duplicatesRemoved: number;
    thresholdRule: string;
  };
}

export function buildManifest(input: {
  spec: ModelSpec;
  onnx: Uint8Array;
  summary: TrainedSummary;
  evaluation: Evaluation;
  dataPackageVersion: string;
  splitConfig: { seed: number; trainFraction: number; validationFraction: number };
  counts: ReturnType<typeof splitCounts>;
  dedupe: DedupeStats;
}): ModelManifest {
  const { spec, evaluation: ev, summary } = input;
  return {
    name: spec.name,
    version: spec.version,
    description: spec.description,
    sha256: sha256Hex(input.onnx),
    sizeBytes: input.onnx.length,
    labels: [...LABELS],
    maxTextChars: MAX_TEXT_CHARS,
    decisionThreshold: summary.threshold.threshold,
    opset: OPSET,
    irVersion: IR_VERSION,
    opsetImports: [
      { domain: "", version: OPSET },
      { domain: CONTRIB_DOMAIN, version: 1 },
    ],
    contribOps: [
      {
        domain: CONTRIB_DOMAIN,
        opType: "Tokenizer",
        version: 1,
        purpose: spec.blocks
          .map((b) => (b.tokens === "word" ? "word tokens (tokenexp)" : 'character tokens (separators [""])'))
          .join("; "),
      },
    ],
    inputName: INPUT_NAME,
    input: { name: INPUT_NAME, dtype: "string", shape: ["N"] },
    outputs: { label: OUTPUT_LABEL, probabilities: OUTPUT_PROBABILITIES },
    outputSpecs: {
      label: { dtype: "string", shape: ["N"] },
      probabilities: { dtype: "float32", shape: ["N", 2] },
    },
    metrics: {
      split: "test",
      examples: ev.test.n,
      accuracy: ev.test.accuracy,
      precision: ev.test.precision,
      recall: ev.test.recall,
      f1: ev.test.f1,
      rocAuc: ev.test.rocAuc,
      hardHamFalsePositiveRate: ev.slices.hardHam.falsePositiveRate,
      hardHamExamples: ev.slices.hardHam.n,
      confusionMatrix: ev.confusionMatrix,
      crossValidationF1: ev.crossValidation.f1,
      parityMaxAbsDifference: ev.parity.maxAbsDifference,
      latencyP50Ms: ev.latency.single.p50Ms,
      latencyP99Ms: ev.latency.single.p99Ms,
      batch32P50Ms: ev.latency.batch32.p50Ms,
      batch32P99Ms: ev.latency.batch32.p99Ms,
    },
    provenance: {
      gitCommit: summary.gitCommit,
      gitDirty: summary.gitDirty,
      pipeline: "npm run train (ml/src/cli.ts)",
      dataPackage: DATA_PACKAGE,
      dataPackageVersion: input.dataPackageVersion,
      seed: input.splitConfig.seed,
      split: {
        trainFraction: input.splitConfig.trainFraction,
        validationFraction: input.splitConfig.validationFraction,
        testFraction:
          Math.round((1 - input.splitConfig.trainFraction - input.splitConfig.validationFraction) * 1e6) /
          1e6,
        examples: {
          train: input.counts.train.total ?? 0,
          validation: input.counts.validation.total ?? 0,
          test: input.counts.test.total ?? 0,
        },
      },
      duplicatesRemoved: input.dedupe.duplicatesRemoved,
      thresholdRule: summary.threshold.rule,
    },
  };
}
