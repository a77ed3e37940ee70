/**
 * model.json, the manifest that travels with every bundled model (written by the training pipeline in ml/).
 * Keys are camelCase; fields we do not use are tolerated so the pipeline can add provenance freely.
 */
export interface ModelManifest {
  name: string;
  version: string;
  /** Hex SHA-256 of model.onnx. */
  sha256: string;
  /** The labels, in the order of the probabilities output's columns. */
  labels: string[];
  /** The longest text a caller may send, in characters (Unicode code points, not UTF-16 code units). */
  maxTextChars: number;
  decisionThreshold: number;
  opset: number;
  /** Name of the string tensor [N] input. */
  inputName: string;
  /** Names of the label (string [N]) and probabilities (float32 [N, labels]) outputs. */
  outputs: { label: string; probabilities: string };
  /** Test-split metrics, flattened to numbers (nested objects become dotted keys). */
  metrics: Record<string, number>;
}

/** A manifest that cannot be used; the message names the problem (the caller adds the file). */
export class ManifestError extends Error {
  override name = "ManifestError";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function flattenNumbers(value: unknown, prefix: string, into: Record<string, number>): void {
  if (typeof value === "number" && Number.isFinite(value)) {
    into[prefix] = value;
  } else if (isRecord(value)) {
    for (const [key, inner] of Object.entries(value)) {
      flattenNumbers(inner, prefix ? `${prefix}.${key}` : key, into);
    }
  }
}

/** Validates a parsed model.json; throws a ManifestError naming the first bad field. */
export function parseManifest(json: unknown): ModelManifest {
  if (!isRecord(json)) {
    throw new ManifestError("the manifest is not a JSON object");
  }
  const text = (key: string, fallback?: string): string => {
    const value = json[key] ?? fallback;
    if (typeof value !== "string" || value.trim() === "") {
      throw new ManifestError(`"${key}" must be a non-empty string`);
    }
    return value;
  };
  const number = (key: string, check: (n: number) => boolean, what: string): number => {
    const value = json[key];
    if (typeof value !== "number" || !Number.isFinite(value) || !check(value)) {
      throw new ManifestError(`"${key}" must be ${what}`);
    }
    return value;
  };
  const sha256 = text("sha256").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new ManifestError(`"sha256" must be 64 hex digits`);
  }
  const labels = json.labels;
  if (
    !Array.isArray(labels) ||
    labels.length < 2 ||
    !labels.every((label) => typeof label === "string" && label !== "") ||
    new Set(labels).size !== labels.length
  ) {
    throw new ManifestError(`"labels" must be a list of at least two distinct non-empty strings`);
  }
  const outputs = json.outputs ?? { label: "label", probabilities: "probabilities" };
  if (!isRecord(outputs) || typeof outputs.label !== "string" || typeof outputs.probabilities !== "string") {
    throw new ManifestError(`"outputs" must name the "label" and "probabilities" outputs`);
  }
  const metrics: Record<string, number> = {};
  flattenNumbers(json.metrics, "", metrics);
  return {
    name: text("name"),
    version: text("version"),
    sha256,
    labels: labels as string[],
    maxTextChars: number("maxTextChars", (n) => Number.isInteger(n) && n > 0, "a positive integer"),
    decisionThreshold: number("decisionThreshold", (n) => n >= 0 && n <= 1, "a number from 0 to 1"),
    opset: json.opset === undefined ? 0 : number("opset", (n) => Number.isInteger(n) && n >= 0, "an integer"),
    inputName: text("inputName", "text"),
    outputs: { label: outputs.label, probabilities: outputs.probabilities },
    metrics,
  };
}
