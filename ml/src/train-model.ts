import { type ClassifierParams, predictProba, roundToFloat32 } from "./classifier.js";
import type { Example } from "./dataset.js";
import { type FeatureSet, featureDim, fitFeatures, vectorize } from "./features.js";
import { chooseThreshold, type ThresholdChoice } from "./metrics.js";
import type { ModelSpec } from "./model-specs.js";
import { buildOnnxModel } from "./onnx-export.js";
import { type EpochLog, trainClassifier } from "./train.js";

export interface TrainedModel {
  name: string;
  version: string;
  featureDim: number;
  features: FeatureSet;
  /** Float32-rounded parameters: exactly what the ONNX file holds. */
  params: ClassifierParams;
  history: EpochLog[];
  threshold: ThresholdChoice;
  /** The trainer's in-memory P(spam) for every validation and test example (dataset order). */
  trainerScores: { validation: number[]; test: number[] };
  onnx: Uint8Array;
  timings: { fitSeconds: number; vectorizeSeconds: number; trainSeconds: number; exportSeconds: number };
}

export type TrainProgress = (message: string, fraction: number) => void;

const isSpam = (examples: readonly Example[]) =>
  Uint8Array.from(examples, (e) => (e.label === "spam" ? 1 : 0));

/**
 * Fits features on the training split, trains, picks the threshold on validation (never on test), and exports the
 * ONNX model. Pure and deterministic: the same dataset and spec always give the same bytes.
 */
export function trainModel(
  spec: ModelSpec,
  examples: readonly Example[],
  producerVersion: string,
  maxTextChars: number,
  progress: TrainProgress = () => {},
): TrainedModel {
  const train = examples.filter((e) => e.split === "train");
  const validation = examples.filter((e) => e.split === "validation");
  const test = examples.filter((e) => e.split === "test");
  const clock = () => performance.now() / 1000;

  let t = clock();
  progress(`fitting vocabulary on ${train.length} training texts`, 0);
  const features = fitFeatures(
    spec.blocks,
    train.map((e) => e.text),
  );
  const fitSeconds = clock() - t;

  t = clock();
  progress(`vectorising ${examples.length} texts into ${featureDim(features)} features`, 0.2);
  const xTrain = vectorize(
    features,
    train.map((e) => e.text),
  );
  const xValidation = vectorize(
    features,
    validation.map((e) => e.text),
  );
  const xTest = vectorize(
    features,
    test.map((e) => e.text),
  );
  const vectorizeSeconds = clock() - t;

  t = clock();
  const weights = Float64Array.from(train, (e) => (e.group === "hard-ham-1" ? spec.train.hardHamWeight : 1));
  const yValidation = isSpam(validation);
  const { params, history } = trainClassifier(
    spec.train,
    { x: xTrain, y: isSpam(train), weights },
    { x: xValidation, y: yValidation },
    (log) =>
      progress(
        `epoch ${log.epoch}/${spec.train.epochs} train loss ${log.trainLoss.toFixed(4)} validation loss ${log.validationLoss.toFixed(4)}`,
        0.4 + (0.55 * log.epoch) / spec.train.epochs,
      ),
  );
  const trainSeconds = clock() - t;

  t = clock();
  const exported = roundToFloat32(params);
  const validationScores = Array.from(predictProba(exported, xValidation));
  const testScores = Array.from(predictProba(exported, xTest));
  const threshold = chooseThreshold(
    yValidation,
    validationScores,
    validation.map((e) => e.group === "hard-ham-1"),
    spec.maxValidationHardHamFpr,
  );
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
    trainerScores: { validation: validationScores, test: testScores },
    onnx,
    timings: { fitSeconds, vectorizeSeconds, trainSeconds, exportSeconds },
  };
}
