import type { ThresholdChoice } from "./metrics.js";
import type { EpochLog } from "./train.js";

/** What a training stage stores (the ONNX bytes live next to it as model.onnx). */
export interface TrainedSummary {
  name: string;
  version: string;
  featureDim: number;
  hidden: number;
  history: EpochLog[];
  threshold: ThresholdChoice;
  trainerScores: { outOfFold: number[]; test: number[] };
  timings: {
    fitSeconds: number;
    vectorizeSeconds: number;
    trainSeconds: number;
    crossValidationSeconds: number;
    exportSeconds: number;
  };
  onnxBytes: number;
  onnxSha256: string;
  trainingPeakRssBytes: number;
  repeatability: { runs: number; identical: boolean; sha256s: string[] };
  gitCommit: string;
  gitDirty: boolean;
  wallSeconds: number;
}
