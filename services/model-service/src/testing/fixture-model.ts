import { createHash } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import onnxProto, { type onnx as OnnxTypes } from "onnx-proto";

/**
 * A tiny ONNX text classifier with the interface of the bundled models, for tests: a string tensor `text` [N] in,
 * `label` (string [N], thresholded in the graph) and `probabilities` (float32 [N, 2]: ham, spam) out.
 * The graph lower-cases the text (StringNormalizer) and calls it spam when it contains one of `spamWords`
 * (RegexFullMatch); the probability of spam is `spamProbability` then and `hamSpamProbability` otherwise.
 */
export interface FixtureModelOptions {
  name?: string;
  version?: string;
  spamWords?: readonly string[];
  spamProbability?: number;
  hamSpamProbability?: number;
  decisionThreshold?: number;
  maxTextChars?: number;
  /** Writes a manifest whose sha256 does not match the ONNX file. */
  corruptSha?: boolean;
  /** Writes bytes that are not an ONNX model (with a matching sha256). */
  garbageOnnx?: boolean;
  /** Overrides or adds manifest fields. */
  manifest?: Record<string, unknown>;
}

// onnx-proto is CommonJS and assigns its namespace dynamically, so only the default import sees it.
const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;
const { AttributeType } = onnx.AttributeProto;

function floatTensor(name: string, values: number[], dims: number[] = []): OnnxTypes.ITensorProto {
  return { name, dataType: DataType.FLOAT, dims, floatData: values };
}

function stringTensor(name: string, values: string[], dims: number[] = []): OnnxTypes.ITensorProto {
  return { name, dataType: DataType.STRING, dims, stringData: values.map((v) => Buffer.from(v, "utf8")) };
}

function attr(name: string, value: string | number | string[] | number[]): OnnxTypes.IAttributeProto {
  if (typeof value === "string") return { name, type: AttributeType.STRING, s: Buffer.from(value, "utf8") };
  if (typeof value === "number") return { name, type: AttributeType.INT, i: value };
  if (value.every((v) => typeof v === "number"))
    return { name, type: AttributeType.INTS, ints: value as number[] };
  return {
    name,
    type: AttributeType.STRINGS,
    strings: (value as string[]).map((v) => Buffer.from(v, "utf8")),
  };
}

function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: OnnxTypes.IAttributeProto[] = [],
) {
  return { opType, input: inputs, output: outputs, attribute: attributes, name: outputs[0] };
}

function escapeRe2(word: string): string {
  return word.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
}

/** Returns the bytes of the fixture ONNX model. */
export function buildFixtureOnnx(options: FixtureModelOptions = {}): Uint8Array {
  const words = options.spamWords ?? ["free", "winner", "viagra", "money"];
  const pSpam = options.spamProbability ?? 0.9;
  const pHamSpam = options.hamSpamProbability ?? 0.2;
  const threshold = options.decisionThreshold ?? 0.5;
  const pattern = `(?s).*(${words.map(escapeRe2).join("|")}).*`;
  const graph: OnnxTypes.IGraphProto = {
    name: "fixture",
    node: [
      node(
        "StringNormalizer",
        ["text"],
        ["lower"],
        [attr("case_change_action", "LOWER"), attr("locale", "C.UTF-8")],
      ),
      node("RegexFullMatch", ["lower"], ["matched"], [attr("pattern", pattern)]),
      node("Cast", ["matched"], ["matched_f"], [attr("to", DataType.FLOAT)]),
      node("Mul", ["matched_f", "scale"], ["scaled"]),
      node("Add", ["scaled", "base"], ["p_spam"]),
      node("Sub", ["one", "p_spam"], ["p_ham"]),
      node("Unsqueeze", ["p_ham", "axis1"], ["p_ham_col"]),
      node("Unsqueeze", ["p_spam", "axis1"], ["p_spam_col"]),
      node("Concat", ["p_ham_col", "p_spam_col"], ["probabilities"], [attr("axis", 1)]),
      node("GreaterOrEqual", ["p_spam", "threshold"], ["is_spam"]),
      node("Where", ["is_spam", "spam_label", "ham_label"], ["label"]),
    ],
    initializer: [
      floatTensor("scale", [pSpam - pHamSpam]),
      floatTensor("base", [pHamSpam]),
      floatTensor("one", [1]),
      floatTensor("threshold", [threshold]),
      { name: "axis1", dataType: DataType.INT64, dims: [1], int64Data: [1] },
      stringTensor("spam_label", ["spam"]),
      stringTensor("ham_label", ["ham"]),
    ],
    input: [
      {
        name: "text",
        type: { tensorType: { elemType: DataType.STRING, shape: { dim: [{ dimParam: "N" }] } } },
      },
    ],
    output: [
      {
        name: "label",
        type: { tensorType: { elemType: DataType.STRING, shape: { dim: [{ dimParam: "N" }] } } },
      },
      {
        name: "probabilities",
        type: {
          tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: "N" }, { dimValue: 2 }] } },
        },
      },
    ],
  };
  const model = onnx.ModelProto.create({
    irVersion: 9,
    producerName: "shadowmesh-model-service-fixture",
    opsetImport: [{ domain: "", version: 20 }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The manifest (model.json) of a fixture model whose ONNX bytes are `bytes`. */
export function fixtureManifest(
  bytes: Uint8Array,
  options: FixtureModelOptions = {},
): Record<string, unknown> {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return {
    name: options.name ?? "spam-fixture",
    version: options.version ?? "1.0.0",
    sha256: options.corruptSha ? sha256.replace(/^./, (c) => (c === "0" ? "1" : "0")) : sha256,
    labels: ["ham", "spam"],
    maxTextChars: options.maxTextChars ?? 2000,
    decisionThreshold: options.decisionThreshold ?? 0.5,
    opset: 20,
    inputName: "text",
    outputs: { label: "label", probabilities: "probabilities" },
    metrics: { accuracy: 0.9, f1: 0.85 },
    provenance: { generator: "services/model-service/src/testing/fixture-model.ts" },
    createdBy: "a test fixture (extra fields are tolerated)",
    ...options.manifest,
  };
}

/**
 * Writes a fixture model (model.onnx, then model.json) into `dir`, each file atomically (write + rename), so a
 * watcher or a reload never sees half a file.
 */
export async function writeFixtureModel(dir: string, options: FixtureModelOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const bytes = options.garbageOnnx ? Buffer.from("this is not an onnx model") : buildFixtureOnnx(options);
  const manifest = fixtureManifest(bytes, options);
  const onnxTmp = path.join(dir, ".model.onnx.tmp");
  await writeFile(onnxTmp, bytes);
  await rename(onnxTmp, path.join(dir, "model.onnx"));
  const jsonTmp = path.join(dir, ".model.json.tmp");
  await writeFile(jsonTmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(jsonTmp, path.join(dir, "model.json"));
}
