import { type ClassifierParams, predictProba, roundToFloat32 } from "./classifier.js";
import type { Example } from "./dataset.js";
import { type FeatureSet, featureDim, fitFeatures, selectRows, vectorize } from "./features.js";
import { chooseThreshold, type ThresholdChoice } from "./metrics.js";
import type { ModelSpec } from "./model-specs.js";
import { buildOnnxModel } from "./onnx-export.js";
import { hashUnit } from "./rng.js";
import { type EpochLog, trainClassifier } from "./train.js";

/** Folds of the cross-validation that chooses the decision threshold and estimates held-out quality. */
export const CV_FOLDS = 5;

export interface TrainedModel {
  name: string;
  version: string;
  featureDim: number;
  features: FeatureSet;
  /** Float32-rounded parameters: exactly what the ONNX file holds. */
  params: ClassifierParams;
  history: EpochLog[];
  threshold: ThresholdChoice;
  /**
   * The trainer's P(spam): `test` is the final model's in-memory prediction for every test example, `outOfFold` the
   * cross-validation prediction for every train + validation example (both in dataset order).
   */
  trainerScores: { outOfFold: number[]; test: number[] };
  onnx: Uint8Array;
  timings: {
    fitSeconds: number;
    vectorizeSeconds: number;
    crossValidationSeconds: number;
    trainSeconds: number;
    exportSeconds: number;
  };
}

export type TrainProgress = (message: string, fraction: number) => void;

const isSpam = (examples: readonly Example[]) =>
  Uint8Array.from(examples, (e) => (e.label === "spam" ? 1 : 0));

/** The cross-validation fold of a train/validation example: a seeded hash of its checksum. */
export function foldOf(seed: number, checksum: string): number {
  return Math.floor(hashUnit(`${seed}:fold`, checksum) * CV_FOLDS);
}

/**
 * Trains one model version. Deterministic: the same dataset and spec always give the same ONNX bytes.
 *
 * 1. The vocabulary is fitted on train + validation (the test split is never read until step 4).
 * 2. A 5-fold cross-validation over train + validation gives an out-of-fold P(spam) for every one of those messages;
 *    the decision threshold is chosen on those scores (about 200 hard-ham messages rather than the ~45 of the
 *    validation split alone, so the hard-ham constraint is estimated far less noisily).
 * 3. The final model is trained on all of train + validation with the same configuration.
 * 4. The final model predicts the test split in memory (for the parity check) and is exported to ONNX.
 */
export function trainModel(
  spec: ModelSpec,
  examples: readonly Example[],
  producerVersion: string,
  maxTextChars: number,
  progress: TrainProgress = () => {},
): TrainedModel {
  const dev = examples.filter((e) => e.split !== "test");
  const test = examples.filter((e) => e.split === "test");
  const clock = () => performance.now() / 1000;

  let t = clock();
  progress(`fitting vocabulary on ${dev.length} train + validation texts`, 0);
  const features = fitFeatures(
    spec.blocks,
    dev.map((e) => e.text),
  );
  const fitSeconds = clock() - t;

  t = clock();
  progress(`vectorising ${examples.length} texts into ${featureDim(features)} features`, 0.15);
  const xDev = vectorize(
    features,
    dev.map((e) => e.text),
  );
  const xTest = vectorize(
    features,
    test.map((e) => e.text),
  );
  const vectorizeSeconds = clock() - t;

  const weightOf = (e: Example) => (e.group === "hard-ham-1" ? spec.train.hardHamWeight : 1);
  const yDev = isSpam(dev);

  t = clock();
  const fold = dev.map((e) => foldOf(spec.train.seed, e.checksum));
  const outOfFold = new Float64Array(dev.length);
  for (let f = 0; f < CV_FOLDS; f++) {
    progress(`cross-validation fold ${f + 1}/${CV_FOLDS}`, 0.3 + (0.5 * f) / CV_FOLDS);
    const inFold = dev.map((_, i) => i).filter((i) => fold[i] === f);
    const outFold = dev.map((_, i) => i).filter((i) => fold[i] !== f);
    const xIn = selectRows(xDev, inFold);
    const fitted = trainClassifier(
      { ...spec.train, seed: spec.train.seed + f + 1 },
      {
        x: selectRows(xDev, outFold),
        y: Uint8Array.from(outFold, (i) => yDev[i] ?? 0),
        weights: Float64Array.from(outFold, (i) => weightOf(dev[i] as Example)),
      },
    );
    const scores = predictProba(fitted.params, xIn);
    inFold.forEach((i, k) => {
      outOfFold[i] = scores[k] ?? 0;
    });
  }
  const threshold = chooseThreshold(
    yDev,
    outOfFold,
    dev.map((e) => e.group === "hard-ham-1"),
    spec.maxSelectionHardHamFpr,
    `${CV_FOLDS}-fold cross-validation over train + validation (out-of-fold scores)`,
  );
  const crossValidationSeconds = clock() - t;

  t = clock();
  const { params, history } = trainClassifier(
    spec.train,
    { x: xDev, y: yDev, weights: Float64Array.from(dev, weightOf) },
    undefined,
    (log) =>
      progress(
        `final model epoch ${log.epoch}/${spec.train.epochs}, train loss ${log.trainLoss.toFixed(4)}`,
        0.8 + (0.18 * log.epoch) / spec.train.epochs,
      ),
  );
  const trainSeconds = clock() - t;

  t = clock();
  const exported = roundToFloat32(params);
  const testScores = Array.from(predictProba(exported, xTest));
  const onnx = buildOnnxModel({
    name: spec.name,
    version: spec.version,
    description: spec.description,
    features,
    params: exported,
    decisionThreshold: threshold.threshold,
    maxTextChars,
    producerVersion,
  });
  const exportSeconds = clock() - t;
  progress(`exported ${onnx.length} bytes, threshold ${threshold.threshold}`, 1);
  return {
    name: spec.name,
    version: spec.version,
    featureDim: featureDim(features),
    features,
    params: exported,
    history,
    threshold,
    trainerScores: { outOfFold: Array.from(outOfFold), test: testScores },
    onnx,
    timings: { fitSeconds, vectorizeSeconds, crossValidationSeconds, trainSeconds, exportSeconds },
  };
}
