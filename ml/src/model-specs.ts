import { SEED } from "./constants.js";
import type { NgramBlockSpec } from "./features.js";
import type { TrainConfig } from "./train.js";

/** Everything that defines one bundled model version. Changing any field retrains that model. */
export interface ModelSpec {
  name: string;
  version: string;
  description: string;
  blocks: NgramBlockSpec[];
  train: TrainConfig;
  /** The hard-ham false-positive rate the threshold search (on held-out, never test, scores) must respect. */
  maxSelectionHardHamFpr: number;
}

export const MODEL_SPECS: readonly ModelSpec[] = [
  {
    name: "spam-v1",
    version: "1.0.0",
    description:
      "Baseline: lower-cased word unigrams, log-tf x idf, L2-normalised, logistic regression. Threshold chosen on 5-fold cross-validation over train + validation; final fit on train + validation.",
    blocks: [{ tokens: "word", minN: 1, maxN: 1, maxFeaturesPerN: [10_000], minDf: 2 }],
    train: {
      hidden: 0,
      epochs: 10,
      batchSize: 64,
      learningRate: 0.01,
      l2: 1e-5,
      hardHamWeight: 1,
      seed: SEED,
    },
    maxSelectionHardHamFpr: 0.04,
  },
  {
    name: "spam-v2",
    version: "2.0.0",
    description:
      "Candidate: word 1-2-grams and character 3-4-grams (log-tf x idf, L2-normalised per block), a 16-dimensional embedding bag with ReLU, logistic output. Hard ham up-weighted (x10) in training. Threshold chosen on 5-fold cross-validation over train + validation; final fit on train + validation.",
    blocks: [
      { tokens: "word", minN: 1, maxN: 2, maxFeaturesPerN: [15_000, 10_000], minDf: 2 },
      { tokens: "char", minN: 3, maxN: 4, maxFeaturesPerN: [8_000, 8_000], minDf: 3 },
    ],
    train: {
      hidden: 16,
      epochs: 3,
      batchSize: 64,
      learningRate: 0.01,
      l2: 1e-6,
      hardHamWeight: 10,
      seed: SEED,
    },
    maxSelectionHardHamFpr: 0.04,
  },
  {
    name: "spam-lite",
    version: "0.1.0",
    description:
      "Small and fast candidate: presence (binary, L2-normalised) of the 1,000 most frequent lower-cased words, logistic regression. No idf, no n-grams, no character features: a tenth of spam-v1's vocabulary. Threshold chosen on 5-fold cross-validation over train + validation; final fit on train + validation.",
    blocks: [{ tokens: "word", minN: 1, maxN: 1, maxFeaturesPerN: [1_000], minDf: 5, weighting: "binary" }],
    train: {
      hidden: 0,
      epochs: 10,
      batchSize: 64,
      learningRate: 0.02,
      l2: 1e-5,
      hardHamWeight: 1,
      seed: SEED,
    },
    maxSelectionHardHamFpr: 0.04,
  },
];

export function modelSpec(name: string): ModelSpec {
  const spec = MODEL_SPECS.find((s) => s.name === name);
  if (spec === undefined) {
    throw new Error(
      `unknown model ${JSON.stringify(name)}; known: ${MODEL_SPECS.map((s) => s.name).join(", ")}`,
    );
  }
  return spec;
}
