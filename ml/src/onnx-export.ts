import onnxProto from "onnx-proto";
import type { ClassifierParams } from "./classifier.js";
import { type FeatureSet, L2_EPSILON, type NgramBlock } from "./features.js";
import { WORD_TOKEN_PATTERN } from "./text-ops.js";

const { onnx } = onnxProto;
type NodeInit = onnxProto.onnx.INodeProto;
type TensorInit = onnxProto.onnx.ITensorProto;
type AttributeInit = onnxProto.onnx.IAttributeProto;
type ValueInfoInit = onnxProto.onnx.IValueInfoProto;
const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** IR version 8 and opset 15 are what the onnx-proto definitions (ONNX 1.10) describe. */
export const IR_VERSION = 8;
export const OPSET = 15;
export const CONTRIB_DOMAIN = "com.microsoft";
export const LABELS = ["ham", "spam"] as const;
export const INPUT_NAME = "text";
export const OUTPUT_LABEL = "label";
export const OUTPUT_PROBABILITIES = "probabilities";
/** The ONNX StringNormalizer needs a locale that exists on the serving machine; C.UTF-8 always does. */
export const NORMALIZER_LOCALE = "C.UTF-8";

/** A contrib operator the graph relies on (recorded in the manifest). */
export interface ContribOp {
  domain: string;
  opType: string;
  version: number;
  purpose: string;
}

export interface ExportInput {
  name: string;
  version: string;
  description: string;
  features: FeatureSet;
  /** Parameters already rounded to float32. */
  params: ClassifierParams;
  decisionThreshold: number;
  maxTextChars: number;
  producerVersion: string;
}

function attr(name: string, value: string | number | string[] | number[], kind?: "floats"): AttributeInit {
  if (typeof value === "string") return { name, type: AttrType.STRING, s: Buffer.from(value, "utf8") };
  if (typeof value === "number") return { name, type: AttrType.INT, i: value };
  if (kind === "floats") return { name, type: AttrType.FLOATS, floats: value as number[] };
  if (value.length > 0 && typeof value[0] === "string") {
    return { name, type: AttrType.STRINGS, strings: (value as string[]).map((s) => Buffer.from(s, "utf8")) };
  }
  return { name, type: AttrType.INTS, ints: value as number[] };
}

function floatTensor(name: string, dims: number[], values: ArrayLike<number>): TensorInit {
  const raw = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) raw.writeFloatLE(values[i] ?? 0, i * 4);
  return { name, dataType: DataType.FLOAT, dims, rawData: raw };
}

function int64Tensor(name: string, dims: number[], values: number[]): TensorInit {
  return { name, dataType: DataType.INT64, dims, int64Data: values };
}

function stringTensor(name: string, values: readonly string[]): TensorInit {
  return {
    name,
    dataType: DataType.STRING,
    dims: [values.length],
    stringData: values.map((v) => Buffer.from(v, "utf8")),
  };
}

function valueInfo(name: string, elemType: number, dims: Array<number | string>): ValueInfoInit {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

/** The TfIdfVectorizer attributes of a block: pool grouped by n-gram length, ascending (ONNX layout). */
function tfidfAttributes(block: NgramBlock): AttributeInit[] {
  const maxN = block.ngrams.reduce((m, g) => Math.max(m, g.length), 0);
  const minN = block.ngrams.reduce((m, g) => Math.min(m, g.length), maxN);
  const ngramCounts: number[] = [];
  const pool: string[] = [];
  for (let n = 1; n <= maxN; n++) {
    ngramCounts.push(pool.length);
    for (const g of block.ngrams) if (g.length === n) pool.push(...g);
  }
  // Columns are numbered in the block's own order, which is already grouped by ascending length.
  const indexes = block.ngrams.map((_, col) => col);
  return [
    attr("mode", "TF"),
    attr("min_gram_length", minN),
    attr("max_gram_length", maxN),
    attr("max_skip_count", 0),
    attr("ngram_counts", ngramCounts),
    attr("ngram_indexes", indexes),
    attr("pool_strings", pool),
  ];
}

/** Which contrib ops a feature set needs: the Tokenizer (there is no standard op that splits on any whitespace). */
export function contribOpsOf(features: FeatureSet): ContribOp[] {
  const purposes = [...new Set(features.blocks.map((b) => b.spec.tokens))].map((t) =>
    t === "word" ? `word tokens (tokenexp ${WORD_TOKEN_PATTERN})` : 'character tokens (separators [""])',
  );
  return [{ domain: CONTRIB_DOMAIN, opType: "Tokenizer", version: 1, purpose: purposes.join("; ") }];
}

/**
 * Builds the self-contained ONNX model: raw text in, label and probabilities out. Every preprocessing step is a
 * graph node, so no client can preprocess differently from training:
 *   text → StringNormalizer(LOWER, C.UTF-8) → per block: Tokenizer → TfIdfVectorizer(TF) → log(1 + tf) × idf
 *   (binary blocks: min(tf, 1)) → L2 normalise → Concat → [MatMul + Add + Relu] → MatMul + Add → logit → Sigmoid → probabilities [ham, spam];
 *   label = labels[P(spam) ≥ threshold].
 * Serialisation is deterministic (fixed field order, no timestamps), so the same inputs give the same bytes.
 */
export function buildOnnxModel(input: ExportInput): Uint8Array {
  const { features, params } = input;
  const nodes: NodeInit[] = [];
  const inits: TensorInit[] = [];
  const node = (
    opType: string,
    inputs: string[],
    outputs: string[],
    attrs: AttributeInit[] = [],
    domain = "",
  ) => {
    nodes.push({
      name: `${outputs[0]}_${opType}`,
      opType,
      input: inputs,
      output: outputs,
      attribute: attrs,
      domain,
    });
  };

  inits.push(floatTensor("one", [], [1]));
  inits.push(floatTensor("l2_epsilon", [], [L2_EPSILON]));
  node(
    "StringNormalizer",
    [INPUT_NAME],
    ["text_lower"],
    [attr("case_change_action", "LOWER"), attr("is_case_sensitive", 1), attr("locale", NORMALIZER_LOCALE)],
  );

  const blockOutputs: string[] = [];
  features.blocks.forEach((block, k) => {
    const tokenizerAttrs =
      block.spec.tokens === "word"
        ? [attr("tokenexp", WORD_TOKEN_PATTERN)]
        : [{ name: "separators", type: AttrType.STRINGS, strings: [Buffer.alloc(0)] }];
    node(
      "Tokenizer",
      ["text_lower"],
      [`tokens_${k}`],
      [attr("mark", 0), attr("mincharnum", 1), attr("pad_value", ""), ...tokenizerAttrs],
      CONTRIB_DOMAIN,
    );
    node("TfIdfVectorizer", [`tokens_${k}`], [`counts_${k}`], tfidfAttributes(block));
    if (block.spec.weighting === "binary") {
      // Presence, not frequency: min(count, 1); no idf.
      node("Min", [`counts_${k}`, "one"], [`tfidf_${k}`]);
    } else {
      node("Add", [`counts_${k}`, "one"], [`counts_plus_one_${k}`]);
      node("Log", [`counts_plus_one_${k}`], [`log_tf_${k}`]);
      inits.push(floatTensor(`idf_${k}`, [block.idf.length], block.idf));
      node("Mul", [`log_tf_${k}`, `idf_${k}`], [`tfidf_${k}`]);
    }
    node("ReduceL2", [`tfidf_${k}`], [`norm_${k}`], [attr("axes", [1]), attr("keepdims", 1)]);
    node("Max", [`norm_${k}`, "l2_epsilon"], [`safe_norm_${k}`]);
    node("Div", [`tfidf_${k}`, `safe_norm_${k}`], [`features_${k}`]);
    blockOutputs.push(`features_${k}`);
  });
  let featuresName = blockOutputs[0] ?? "";
  if (blockOutputs.length > 1) {
    node("Concat", blockOutputs, ["features"], [attr("axis", 1)]);
    featuresName = "features";
  }

  if (params.hidden > 0) {
    inits.push(floatTensor("embedding", [params.inputDim, params.hidden], params.w1));
    inits.push(floatTensor("hidden_bias", [params.hidden], params.b1));
    inits.push(floatTensor("output_weight", [params.hidden, 1], params.w2));
    node("MatMul", [featuresName, "embedding"], ["bag"]);
    node("Add", ["bag", "hidden_bias"], ["hidden_pre"]);
    node("Relu", ["hidden_pre"], ["hidden"]);
    node("MatMul", ["hidden", "output_weight"], ["logit_raw"]);
  } else {
    inits.push(floatTensor("output_weight", [params.inputDim, 1], params.w2));
    node("MatMul", [featuresName, "output_weight"], ["logit_raw"]);
  }
  inits.push(floatTensor("output_bias", [1], params.b2));
  node("Add", ["logit_raw", "output_bias"], ["logit"]);
  node("Sigmoid", ["logit"], ["p_spam"]);
  node("Neg", ["logit"], ["neg_logit"]);
  node("Sigmoid", ["neg_logit"], ["p_ham"]);
  node("Concat", ["p_ham", "p_spam"], [OUTPUT_PROBABILITIES], [attr("axis", 1)]);

  inits.push(int64Tensor("squeeze_axes", [1], [1]));
  inits.push(floatTensor("decision_threshold", [], [input.decisionThreshold]));
  inits.push(stringTensor("labels", LABELS));
  node("Squeeze", ["p_spam", "squeeze_axes"], ["p_spam_flat"]);
  node("GreaterOrEqual", ["p_spam_flat", "decision_threshold"], ["is_spam"]);
  node("Cast", ["is_spam"], ["label_index"], [attr("to", DataType.INT64)]);
  node("Gather", ["labels", "label_index"], [OUTPUT_LABEL], [attr("axis", 0)]);

  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: "shadowmesh-ml",
    producerVersion: input.producerVersion,
    domain: "dev.shadowmesh",
    modelVersion: Number.parseInt(input.version, 10),
    docString: input.description,
    opsetImport: [
      { domain: "", version: OPSET },
      { domain: CONTRIB_DOMAIN, version: 1 },
    ],
    metadataProps: [
      { key: "name", value: input.name },
      { key: "version", value: input.version },
      { key: "labels", value: JSON.stringify(LABELS) },
      { key: "decision_threshold", value: String(input.decisionThreshold) },
      { key: "max_text_chars", value: String(input.maxTextChars) },
    ],
    graph: {
      name: input.name.replace(/[^A-Za-z0-9_]/g, "_"),
      node: nodes,
      initializer: inits,
      input: [valueInfo(INPUT_NAME, DataType.STRING, ["N"])],
      output: [
        valueInfo(OUTPUT_LABEL, DataType.STRING, ["N"]),
        valueInfo(OUTPUT_PROBABILITIES, DataType.FLOAT, ["N", 2]),
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * A graph holding only the preprocessing ops of the served models (lower-casing, then optionally one Tokenizer),
 * output `tokens`. Tests use it to check that the trainer's mirror of these ops (text-ops.ts) agrees with ONNX Runtime.
 */
export function buildPreprocessingProbe(kind: "lower" | "word" | "char"): Uint8Array {
  const nodes: NodeInit[] = [
    {
      name: "normalize",
      opType: "StringNormalizer",
      input: [INPUT_NAME],
      output: [kind === "lower" ? "tokens" : "text_lower"],
      attribute: [
        attr("case_change_action", "LOWER"),
        attr("is_case_sensitive", 1),
        attr("locale", NORMALIZER_LOCALE),
      ],
    },
  ];
  if (kind !== "lower") {
    nodes.push({
      name: "tokenize",
      opType: "Tokenizer",
      domain: CONTRIB_DOMAIN,
      input: ["text_lower"],
      output: ["tokens"],
      attribute: [
        attr("mark", 0),
        attr("mincharnum", 1),
        attr("pad_value", ""),
        kind === "word"
          ? attr("tokenexp", WORD_TOKEN_PATTERN)
          : { name: "separators", type: AttrType.STRINGS, strings: [Buffer.alloc(0)] },
      ],
    });
  }
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: "shadowmesh-ml-test",
    opsetImport: [
      { domain: "", version: OPSET },
      { domain: CONTRIB_DOMAIN, version: 1 },
    ],
    graph: {
      name: `probe_${kind}`,
      node: nodes,
      input: [valueInfo(INPUT_NAME, DataType.STRING, ["N"])],
      output: [valueInfo("tokens", DataType.STRING, kind === "lower" ? ["N"] : ["N", "T"])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
