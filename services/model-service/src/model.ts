import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { ManifestError, type ModelManifest, parseManifest } from "./manifest.js";

/** What a loaded model says about itself: its manifest plus when and how fast it was loaded. */
export interface LoadedModelInfo extends ModelManifest {
  dir: string;
  loadedAt: Date;
  loadMs: number;
}

/** The outcome of one inference run over N texts. */
export interface BatchOutput {
  /** N labels. */
  labels: string[];
  /** N × labels.length probabilities, row-major. */
  probabilities: Float32Array;
  /** Time spent in `session.run`, in ms. */
  inferenceMs: number;
}

/** A classifier: the loaded ONNX model, or a test double. */
export interface Classifier {
  readonly info: LoadedModelInfo;
  classify(texts: string[]): Promise<BatchOutput>;
  close(): Promise<void>;
}

/** A model that cannot be served: the message is one line naming the file and the problem. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export interface LoadOptions {
  /** ONNX Runtime intra-op threads (0 lets ONNX Runtime choose). */
  intraOpThreads?: number;
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, " ").trim();
}

/** An ONNX text classifier served by onnxruntime-node. */
export class OnnxClassifier implements Classifier {
  readonly #fetches: string[];

  constructor(
    readonly info: LoadedModelInfo,
    private readonly session: ort.InferenceSession,
  ) {
    this.#fetches = [info.outputs.label, info.outputs.probabilities];
  }

  async classify(texts: string[]): Promise<BatchOutput> {
    const { inputName, outputs, labels: names } = this.info;
    const feeds = { [inputName]: new ort.Tensor("string", texts, [texts.length]) };
    const started = performance.now();
    const result = await this.session.run(feeds, this.#fetches);
    const inferenceMs = performance.now() - started;
    const label = result[outputs.label];
    const probabilities = result[outputs.probabilities];
    if (label?.type !== "string" || label.data.length !== texts.length) {
      throw new Error(`output "${outputs.label}" is not a string tensor of ${texts.length} labels`);
    }
    if (probabilities?.type !== "float32" || probabilities.data.length !== texts.length * names.length) {
      throw new Error(
        `output "${outputs.probabilities}" is not a float32 tensor [${texts.length}, ${names.length}]`,
      );
    }
    return { labels: label.data as string[], probabilities: probabilities.data as Float32Array, inferenceMs };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Loads and verifies the model in `dir`: model.json parses, model.onnx exists and matches the manifest's sha256,
 * the session loads, the inputs and outputs the manifest names exist, and a smoke prediction returns known labels
 * and probabilities that add up to 1. Any failure is a ModelLoadError naming the file and the problem.
 */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<OnnxClassifier> {
  const started = performance.now();
  const manifestFile = path.join(dir, "model.json");
  const onnxFile = path.join(dir, "model.onnx");
  let manifest: ModelManifest;
  try {
    manifest = parseManifest(JSON.parse(await readFile(manifestFile, "utf8")));
  } catch (error) {
    const problem =
      (error as NodeJS.ErrnoException).code === "ENOENT"
        ? "not found"
        : error instanceof ManifestError
          ? error.message
          : `cannot be read: ${oneLine(error)}`;
    throw new ModelLoadError(manifestFile, problem);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(onnxFile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelLoadError(onnxFile, code === "ENOENT" ? "not found" : `cannot be read: ${oneLine(error)}`);
  }
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== manifest.sha256) {
    throw new ModelLoadError(onnxFile, `sha256 is ${sha256} but model.json says ${manifest.sha256}`);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: options.intraOpThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
  } catch (error) {
    throw new ModelLoadError(onnxFile, `ONNX Runtime cannot load it: ${oneLine(error)}`);
  }
  const classifier = new OnnxClassifier({ ...manifest, dir, loadedAt: new Date(), loadMs: 0 }, session);
  try {
    if (!session.inputNames.includes(manifest.inputName)) {
      throw new Error(`has no input "${manifest.inputName}" (inputs: ${session.inputNames.join(", ")})`);
    }
    for (const output of [manifest.outputs.label, manifest.outputs.probabilities]) {
      if (!session.outputNames.includes(output)) {
        throw new Error(`has no output "${output}" (outputs: ${session.outputNames.join(", ")})`);
      }
    }
    const smoke = await classifier.classify(["Smoke test: is this message spam?", "hello"]);
    for (const label of smoke.labels) {
      if (!manifest.labels.includes(label)) {
        throw new Error(
          `smoke prediction returned the label "${label}", which is not in model.json's labels`,
        );
      }
    }
    const width = manifest.labels.length;
    for (let row = 0; row < smoke.labels.length; row++) {
      const slice = smoke.probabilities.subarray(row * width, row * width + width);
      const sum = slice.reduce((a, b) => a + b, 0);
      if (!slice.every((p) => Number.isFinite(p) && p >= 0 && p <= 1) || Math.abs(sum - 1) > 1e-3) {
        throw new Error(
          `smoke prediction returned probabilities [${[...slice].join(", ")}] that are not a distribution`,
        );
      }
    }
  } catch (error) {
    await session.release().catch(() => undefined);
    throw new ModelLoadError(onnxFile, oneLine(error));
  }
  classifier.info.loadMs = performance.now() - started;
  return classifier;
}
