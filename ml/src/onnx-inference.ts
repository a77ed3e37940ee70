import * as ort from "onnxruntime-node";
import { INPUT_NAME, OUTPUT_LABEL, OUTPUT_PROBABILITIES } from "./onnx-export.js";

export interface OnnxPredictions {
  /** P(spam) per text. */
  spamProbability: Float32Array;
  /** P(ham) per text. */
  hamProbability: Float32Array;
  labels: string[];
}

export async function createSession(model: Uint8Array | string): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  return typeof model === "string"
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

export async function runBatch(session: ort.InferenceSession, texts: readonly string[]) {
  const feeds = { [INPUT_NAME]: new ort.Tensor("string", [...texts], [texts.length]) };
  return session.run(feeds);
}

/** Runs every text through the session in batches and collects the outputs. */
export async function predictWithOnnx(
  session: ort.InferenceSession,
  texts: readonly string[],
  batchSize = 32,
): Promise<OnnxPredictions> {
  const spamProbability = new Float32Array(texts.length);
  const hamProbability = new Float32Array(texts.length);
  const labels: string[] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize);
    const out = await runBatch(session, batch);
    const probs = out[OUTPUT_PROBABILITIES];
    const label = out[OUTPUT_LABEL];
    if (probs === undefined || label === undefined) throw new Error("model is missing an output");
    const data = probs.data as Float32Array;
    for (let i = 0; i < batch.length; i++) {
      hamProbability[start + i] = data[2 * i] ?? Number.NaN;
      spamProbability[start + i] = data[2 * i + 1] ?? Number.NaN;
    }
    labels.push(...(label.data as string[]));
  }
  return { spamProbability, hamProbability, labels };
}
