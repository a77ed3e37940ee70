import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../cache.js";
import { createSession, type OnnxPredictions, predictWithOnnx } from "../onnx-inference.js";

/** How differently a candidate labels the test split than the baseline (what the shadow comparison will see). */
export interface Disagreement {
  baseline: string;
  candidate: string;
  examples: number;
  disagreements: number;
  rate: number;
  baselineHamCandidateSpam: number;
  baselineSpamCandidateHam: number;
  meanAbsSpamProbabilityDifference: number;
  spamProbabilityDifferenceAbove0_1: number;
}

/** A model's ONNX Runtime predictions on some texts, or undefined when the file does not exist. */
export async function predictFile(
  file: string,
  texts: readonly string[],
): Promise<OnnxPredictions | undefined> {
  if (!existsSync(file)) return undefined;
  const session = await createSession(file);
  const out = await predictWithOnnx(session, texts);
  await session.release();
  return out;
}

/**
 * The compare stage: each candidate's disagreement with the baseline on the same texts (a model without a file is
 * left out; nothing is compared without the baseline).
 */
export async function compareWithBaseline(input: {
  baseline: string;
  candidates: readonly string[];
  texts: readonly string[];
  onnxOf: (name: string) => string;
  log: (line: string) => void;
}): Promise<Disagreement[]> {
  const baseline = await predictFile(input.onnxOf(input.baseline), input.texts);
  if (baseline === undefined) return [];
  const out: Disagreement[] = [];
  for (const candidate of input.candidates) {
    const predictions = await predictFile(input.onnxOf(candidate), input.texts);
    if (predictions === undefined) continue;
    const d = measureDisagreement({ baseline: input.baseline, candidate }, baseline, predictions);
    out.push(d);
    input.log(`    ${describeDisagreement(d)}`);
  }
  return out;
}

export function measureDisagreement(
  names: { baseline: string; candidate: string },
  a: OnnxPredictions,
  b: OnnxPredictions,
): Disagreement {
  const n = a.labels.length;
  let disagreements = 0;
  let baselineHamCandidateSpam = 0;
  let deltaSum = 0;
  let bigDeltas = 0;
  for (let i = 0; i < n; i++) {
    if (a.labels[i] !== b.labels[i]) {
      disagreements += 1;
      if (a.labels[i] === "ham") baselineHamCandidateSpam += 1;
    }
    const delta = Math.abs((a.spamProbability[i] ?? 0) - (b.spamProbability[i] ?? 0));
    deltaSum += delta;
    if (delta > 0.1) bigDeltas += 1;
  }
  return {
    ...names,
    examples: n,
    disagreements,
    rate: disagreements / n,
    baselineHamCandidateSpam,
    baselineSpamCandidateHam: disagreements - baselineHamCandidateSpam,
    meanAbsSpamProbabilityDifference: deltaSum / n,
    spamProbabilityDifferenceAbove0_1: bigDeltas,
  };
}

export function describeDisagreement(d: Disagreement): string {
  return (
    `${d.candidate} vs ${d.baseline}: ${d.disagreements} of ${d.examples} test texts (${(100 * d.rate).toFixed(2)} %) get a different label ` +
    `(${d.baselineHamCandidateSpam} ham by ${d.baseline} but spam by ${d.candidate}, ${d.baselineSpamCandidateHam} the other way); ` +
    `mean |P(spam) difference| ${d.meanAbsSpamProbabilityDifference.toFixed(4)}, ` +
    `${d.spamProbabilityDifferenceAbove0_1} texts differ by more than 0.1.`
  );
}

/**
 * Records a published model's disagreements in its report.json (`disagreements`) and report.md (one section each):
 * the baseline's report lists every candidate, a candidate's report its comparison with the baseline.
 */
export function addDisagreementsToReport(dir: string, model: string, list: readonly Disagreement[]): void {
  if (list.length === 0) return;
  const reportFile = join(dir, "report.json");
  const report = JSON.parse(readFileSync(reportFile, "utf8")) as Record<string, unknown>;
  report.disagreements = list;
  writeAtomic(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  const md = join(dir, "report.md");
  const sections = list.map(
    (d) =>
      `\n## Disagreement with ${d.baseline === model ? d.candidate : d.baseline}\n\n${describeDisagreement(d)}\n`,
  );
  writeAtomic(md, `${readFileSync(md, "utf8")}${sections.join("")}`);
}
