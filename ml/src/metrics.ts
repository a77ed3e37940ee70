/** Counts and rates of a binary decision, spam being the positive class. */
export interface BinaryMetrics {
  n: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** False-positive rate: ham classified as spam. */
  falsePositiveRate: number;
  /** False-negative rate: spam classified as ham. */
  falseNegativeRate: number;
}

const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);

export function binaryMetrics(
  isSpam: ArrayLike<number>,
  spamProbability: ArrayLike<number>,
  threshold: number,
): BinaryMetrics {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < isSpam.length; i++) {
    const predicted = (spamProbability[i] ?? 0) >= threshold;
    const actual = (isSpam[i] ?? 0) === 1;
    if (predicted && actual) tp++;
    else if (predicted) fp++;
    else if (actual) fn++;
    else tn++;
  }
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    n: isSpam.length,
    tp,
    fp,
    tn,
    fn,
    accuracy: ratio(tp + tn, isSpam.length),
    precision,
    recall,
    f1: ratio(2 * precision * recall, precision + recall),
    falsePositiveRate: ratio(fp, fp + tn),
    falseNegativeRate: ratio(fn, fn + tp),
  };
}

/** ROC-AUC as the Mann–Whitney statistic (ties count one half). */
export function rocAuc(isSpam: ArrayLike<number>, score: ArrayLike<number>): number {
  const idx = Array.from({ length: isSpam.length }, (_, i) => i).sort(
    (a, b) => (score[a] ?? 0) - (score[b] ?? 0),
  );
  let rankSumPos = 0;
  let positives = 0;
  let i = 0;
  while (i < idx.length) {
    let j = i;
    const s = score[idx[i] ?? 0] ?? 0;
    while (j + 1 < idx.length && (score[idx[j + 1] ?? 0] ?? 0) === s) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if ((isSpam[idx[k] ?? 0] ?? 0) === 1) {
        rankSumPos += avgRank;
        positives++;
      }
    }
    i = j + 1;
  }
  const negatives = isSpam.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSumPos - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export interface ThresholdChoice {
  threshold: number;
  rule: string;
  /** Where the scores came from (never the test split). */
  scores: string;
  examples: number;
  f1: number;
  hardHamExamples: number;
  hardHamFalsePositives: number;
  hardHamFalsePositiveRate: number;
  /** False when no candidate met the hard-ham constraint (the least-bad candidate was taken). */
  constraintMet: boolean;
}

/**
 * Chooses the decision threshold from held-out scores: among thresholds 0.05, 0.06, …, 0.95, the one with the best F1
 * whose hard-ham false-positive rate is at most `maxHardHamFpr`; ties go to the threshold closest to 0.5.
 */
export function chooseThreshold(
  isSpam: ArrayLike<number>,
  spamProbability: ArrayLike<number>,
  isHardHam: ArrayLike<boolean>,
  maxHardHamFpr: number,
  scores: string,
): ThresholdChoice {
  const hardIdx: number[] = [];
  for (let i = 0; i < isHardHam.length; i++) if (isHardHam[i]) hardIdx.push(i);
  const candidates: Array<{ t: number; f1: number; hardFp: number; hardFpr: number }> = [];
  for (let k = 5; k <= 95; k++) {
    const t = k / 100;
    const f1 = binaryMetrics(isSpam, spamProbability, t).f1;
    const hardFp = hardIdx.filter((i) => (spamProbability[i] ?? 0) >= t).length;
    candidates.push({ t, f1, hardFp, hardFpr: ratio(hardFp, hardIdx.length) });
  }
  const better = (a: { t: number; f1: number }, b: { t: number; f1: number }) =>
    a.f1 > b.f1 || (a.f1 === b.f1 && Math.abs(a.t - 0.5) < Math.abs(b.t - 0.5));
  const feasible = candidates.filter((c) => c.hardFpr <= maxHardHamFpr);
  const lowest = Math.min(...candidates.map((x) => x.hardFpr));
  const pool = feasible.length > 0 ? feasible : candidates.filter((c) => c.hardFpr === lowest);
  let best = pool[0];
  for (const c of pool) if (best === undefined || better(c, best)) best = c;
  if (best === undefined) throw new Error("no threshold candidates");
  return {
    threshold: best.t,
    rule: `best F1 with hard-ham FPR <= ${maxHardHamFpr} over thresholds 0.05..0.95 (step 0.01)`,
    scores,
    examples: isSpam.length,
    f1: best.f1,
    hardHamExamples: hardIdx.length,
    hardHamFalsePositives: best.hardFp,
    hardHamFalsePositiveRate: best.hardFpr,
    constraintMet: feasible.length > 0,
  };
}

export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedAscending.length) - 1;
  return sortedAscending[Math.min(Math.max(rank, 0), sortedAscending.length - 1)] ?? Number.NaN;
}
