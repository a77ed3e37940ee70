import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runTsChild } from "./child-process.js";
import type { Example } from "./dataset.js";
import { type BinaryMetrics, binaryMetrics, rocAuc } from "./metrics.js";
import { createSession, predictWithOnnx } from "./onnx-inference.js";

export const PARITY_TOLERANCE = 1e-5;
export const SHORT_TEXT_CHARS = 1_000;
const URL_PATTERN = /https?:\/\/|www\./i;

export interface SliceMetrics extends BinaryMetrics {
  definition: string;
}

export interface LatencyReport {
  single: { runs: number; p50Ms: number; p99Ms: number; meanMs: number };
  batch32: { runs: number; p50Ms: number; p99Ms: number; meanMs: number };
  peakRssBytes: number;
  baselineRssBytes: number;
  modelRssBytes: number;
  /** The machine's 1-minute load average when the benchmark finished, and its CPU count. */
  loadAverage1m: number;
  cpus: number;
}

export interface Evaluation {
  decisionThreshold: number;
  test: BinaryMetrics & { rocAuc: number };
  /** Out-of-fold cross-validation predictions over train + validation (trainer scores, same threshold). */
  crossValidation: BinaryMetrics & { rocAuc: number; hardHamFalsePositiveRate: number };
  /** Rows: actual [ham, spam]; columns: predicted [ham, spam]. */
  confusionMatrix: { labels: ["ham", "spam"]; matrix: [[number, number], [number, number]] };
  slices: Record<"hardHam" | "short" | "long" | "withUrls" | "withoutUrls" | "html" | "plain", SliceMetrics>;
  parity: {
    examples: number;
    tolerance: number;
    maxAbsDifference: number;
    labelMismatches: number;
    passed: boolean;
  };
  /** The ONNX label output of every test example (dataset order), for the v1/v2 disagreement rate. */
  testLabels: string[];
  latency: LatencyReport;
}

export function hasUrl(text: string): boolean {
  return URL_PATTERN.test(text);
}

function withAuc(m: BinaryMetrics, y: ArrayLike<number>, s: ArrayLike<number>) {
  return { ...m, rocAuc: rocAuc(y, s) };
}

/**
 * Evaluates an exported model with ONNX Runtime on the whole test split: metrics, slices, parity against the
 * trainer's in-memory predictions, and (in a separate process) latency and peak memory.
 */
export async function evaluateModel(input: {
  onnxPath: string;
  examples: readonly Example[];
  decisionThreshold: number;
  trainerScores: { outOfFold: number[]; test: number[] };
}): Promise<Evaluation> {
  const test = input.examples.filter((e) => e.split === "test");
  const dev = input.examples.filter((e) => e.split !== "test");
  const session = await createSession(input.onnxPath);
  const onnx = await predictWithOnnx(
    session,
    test.map((e) => e.text),
  );
  await session.release();

  const threshold32 = Math.fround(input.decisionThreshold);
  let maxAbsDifference = 0;
  let labelMismatches = 0;
  test.forEach((_, i) => {
    const mine = input.trainerScores.test[i] ?? Number.NaN;
    const spam = onnx.spamProbability[i] ?? Number.NaN;
    const ham = onnx.hamProbability[i] ?? Number.NaN;
    const diff = Math.max(Math.abs(spam - mine), Math.abs(ham - (1 - mine)));
    maxAbsDifference = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : Math.max(maxAbsDifference, diff);
    if ((onnx.labels[i] === "spam") !== mine >= threshold32) labelMismatches += 1;
  });

  const yTest = test.map((e) => (e.label === "spam" ? 1 : 0));
  const predicted = onnx.labels.map((l) => (l === "spam" ? 1 : 0));
  const testMetrics = withAuc(binaryMetrics(yTest, predicted, 0.5), yTest, onnx.spamProbability);
  const yDev = dev.map((e) => (e.label === "spam" ? 1 : 0));
  const hardDev = dev.map((e, i) => (e.group === "hard-ham-1" ? i : -1)).filter((i) => i >= 0);
  const crossValidation = {
    ...withAuc(
      binaryMetrics(yDev, input.trainerScores.outOfFold, threshold32),
      yDev,
      input.trainerScores.outOfFold,
    ),
    hardHamFalsePositiveRate:
      hardDev.filter((i) => (input.trainerScores.outOfFold[i] ?? 0) >= threshold32).length /
      Math.max(1, hardDev.length),
  };

  const slice = (definition: string, keep: (e: Example) => boolean): SliceMetrics => {
    const idx = test.map((e, i) => (keep(e) ? i : -1)).filter((i) => i >= 0);
    return {
      definition,
      ...binaryMetrics(
        idx.map((i) => yTest[i] ?? 0),
        idx.map((i) => predicted[i] ?? 0),
        0.5,
      ),
    };
  };
  const slices = {
    hardHam: slice(
      "hard-ham-1 messages (all ham; the rate that matters is falsePositiveRate)",
      (e) => e.group === "hard-ham-1",
    ),
    short: slice(`text shorter than ${SHORT_TEXT_CHARS} characters`, (e) => e.text.length < SHORT_TEXT_CHARS),
    long: slice(`text of ${SHORT_TEXT_CHARS} characters or more`, (e) => e.text.length >= SHORT_TEXT_CHARS),
    withUrls: slice("text contains a URL (http://, https:// or www.)", (e) => hasUrl(e.text)),
    withoutUrls: slice("text contains no URL", (e) => !hasUrl(e.text)),
    html: slice("message had an HTML body", (e) => e.hasHtml),
    plain: slice("message had no HTML body", (e) => !e.hasHtml),
  };

  const latency = await benchmark(
    input.onnxPath,
    test.map((e) => e.text),
  );
  return {
    decisionThreshold: input.decisionThreshold,
    test: testMetrics,
    crossValidation,
    confusionMatrix: {
      labels: ["ham", "spam"],
      matrix: [
        [testMetrics.tn, testMetrics.fp],
        [testMetrics.fn, testMetrics.tp],
      ],
    },
    slices,
    parity: {
      examples: test.length,
      tolerance: PARITY_TOLERANCE,
      maxAbsDifference,
      labelMismatches,
      passed: maxAbsDifference <= PARITY_TOLERANCE && labelMismatches === 0,
    },
    testLabels: onnx.labels,
    latency,
  };
}

/** Latency (p50/p99 for one text and for a batch of 32 test texts) and peak memory, in a fresh process. */
export async function benchmark(onnxPath: string, texts: readonly string[]): Promise<LatencyReport> {
  const dir = mkdtempSync(join(tmpdir(), "shadowmesh-bench-"));
  try {
    const textsPath = join(dir, "texts.json");
    writeFileSync(textsPath, JSON.stringify(texts));
    let result: LatencyReport | undefined;
    await runTsChild("bench-child.ts", [onnxPath, textsPath], (line) => {
      if (line.startsWith("{")) result = JSON.parse(line) as LatencyReport;
    });
    if (result === undefined) throw new Error("benchmark printed no result");
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
