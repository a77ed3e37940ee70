/**
 * Trains one model in its own process (so two trainings can run side by side on two cores: the pipeline trains
 * every model twice and compares the bytes). Usage: train-child.ts <dataset.json> <model name> <out dir>.
 * Progress goes to stdout as JSON lines; the results go to <out dir>/model.onnx and <out dir>/trained.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_TEXT_CHARS } from "./constants.js";
import type { Example } from "./dataset.js";
import { modelSpec } from "./model-specs.js";
import { sha256Hex } from "./rng.js";
import { trainModel } from "./train-model.js";

const [datasetPath, modelName, outDir, producerVersion] = process.argv.slice(2);
if (datasetPath === undefined || modelName === undefined || outDir === undefined) {
  throw new Error("usage: train-child <dataset.json> <model> <out dir> [producer version]");
}
const { examples } = JSON.parse(readFileSync(datasetPath, "utf8")) as { examples: Example[] };
const trained = trainModel(
  modelSpec(modelName),
  examples,
  producerVersion ?? "0.0.0",
  MAX_TEXT_CHARS,
  (message, fraction) => process.stdout.write(`${JSON.stringify({ message, fraction })}\n`),
);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "model.onnx"), trained.onnx);
const { onnx, params, features, ...summary } = trained;
writeFileSync(
  join(outDir, "trained.json"),
  JSON.stringify({
    ...summary,
    onnxBytes: onnx.length,
    onnxSha256: sha256Hex(onnx),
    hidden: params.hidden,
    // Peak resident memory of this training process (vocabulary, sparse matrices, cross-validation, export).
    trainingPeakRssBytes: process.resourceUsage().maxRSS * 1024,
  }),
);
