import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../cache.js";
import { createSession, type OnnxPredictions, predictWithOnnx } from "../onnx-inference.js";

/** How differently spam-v1 and spam-v2 label the test split (what the shadow comparison will see). */
export interface Disagreement {
  examples: number;
  disagreements: number;
  rate: number;
  spamV1HamSpamV2Spam: number;
  spamV1SpamSpamV2Ham: number;
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

export function measureDisagreement(a: OnnxPredictions, b: OnnxPredictions): Disagreement {
  const n = a.labels.length;
  let disagreements = 0;
  let v1HamV2Spam = 0;
  let deltaSum = 0;
  let bigDeltas = 0;
  for (let i = 0; i < n; i++) {
    if (a.labels[i] !== b.labels[i]) {
      disagreements += 1;
      if (a.labels[i] === "ham") v1HamV2Spam += 1;
    }
    const delta = Math.abs((a.spamProbability[i] ?? 0) - (b.spamProbability[i] ?? 0));
    deltaSum += delta;
    if (delta > 0.1) bigDeltas += 1;
  }
  return {
    examples: n,
    disagreements,
    rate: disagreements / n,
    spamV1HamSpamV2Spam: v1HamV2Spam,
    spamV1SpamSpamV2Ham: disagreements - v1HamV2Spam,
    meanAbsSpamProbabilityDifference: deltaSum / n,
    spamProbabilityDifferenceAbove0_1: bigDeltas,
  };
}

export function describeDisagreement(d: Disagreement): string {
  return (
    `${d.disagreements} of ${d.examples} test texts (${(100 * d.rate).toFixed(2)} %) get a different label ` +
    `(${d.spamV1HamSpamV2Spam} ham by spam-v1 but spam by spam-v2, ${d.spamV1SpamSpamV2Ham} the other way); ` +
    `mean |P(spam) difference| ${d.meanAbsSpamProbabilityDifference.toFixed(4)}, ` +
    `${d.spamProbabilityDifferenceAbove0_1} texts differ by more than 0.1.`
  );
}

/** Adds the disagreement with another model to a published model's report.json and report.md. */
export function addDisagreementToReport(dir: string, other: string, d: Disagreement): void {
  const reportFile = join(dir, "report.json");
  const report = JSON.parse(readFileSync(reportFile, "utf8")) as Record<string, unknown>;
  report.disagreementWithOtherModel = { other, ...d };
  writeAtomic(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  const md = join(dir, "report.md");
  writeAtomic(
    md,
    `${readFileSync(md, "utf8")}\n## Disagreement with ${other}\n\n${describeDisagreement(d)}\n`,
  );
}
