import { charTokens, lowerCase, wordTokens } from "./text-ops.js";

/** One block of n-gram features: which tokens, which n-gram lengths, how many features per length. */
export interface NgramBlockSpec {
  tokens: "word" | "char";
  /** For each n in [minN, maxN], the maximum number of n-grams kept (the most frequent by document frequency). */
  minN: number;
  maxN: number;
  maxFeaturesPerN: number[];
  /** An n-gram must occur in at least this many training documents. */
  minDf: number;
  /**
   * How a count becomes a feature before L2 normalisation: "log-tf-idf" (default) = log(1 + count) × idf;
   * "binary" = 1 when the n-gram occurs at all (no idf), so one repeated word cannot dominate a short text.
   */
  weighting?: "log-tf-idf" | "binary";
}

/** A fitted block: the kept n-grams (as token arrays, ordered by column) and their idf weights. */
export interface NgramBlock {
  spec: NgramBlockSpec;
  /** ngrams[col] is the n-gram of column col; ngrams are grouped by length, ascending. */
  ngrams: string[][];
  /** Smoothed inverse document frequency of each column: ln((1 + nDocs) / (1 + df)) + 1, rounded to float32. */
  idf: number[];
}

/** Sparse rows in compressed-sparse-row form. */
export interface SparseMatrix {
  rows: number;
  cols: number;
  rowPtr: Int32Array;
  colIdx: Int32Array;
  values: Float64Array;
}

const KEY_SEP = "\u0000";

/**
 * Calls `visit` with the key of every n-gram of a lower-cased document, in order. Word n-grams join their tokens
 * with U+0000 (which no word token contains); a character n-gram is simply the substring of its n code points.
 */
function forEachNgram(tokens: "word" | "char", lower: string, n: number, visit: (key: string) => void): void {
  if (tokens === "word") {
    const words = wordTokens(lower);
    for (let i = 0; i + n <= words.length; i++) visit(ngramKey(words, i, n));
    return;
  }
  if (!HAS_ASTRAL.test(lower)) {
    for (let i = 0; i + n <= lower.length; i++) visit(lower.slice(i, i + n));
    return;
  }
  const chars = charTokens(lower);
  const offsets = new Int32Array(chars.length + 1);
  chars.forEach((c, i) => {
    offsets[i + 1] = (offsets[i] ?? 0) + c.length;
  });
  for (let i = 0; i + n <= chars.length; i++) visit(lower.slice(offsets[i], offsets[i + n]));
}

const HAS_ASTRAL = /[\uD800-\uDFFF]/;

function ngramKey(tokens: readonly string[], start: number, n: number): string {
  if (n === 1) return tokens[start] ?? "";
  let key = tokens[start] ?? "";
  for (let k = 1; k < n; k++) key += KEY_SEP + (tokens[start + k] ?? "");
  return key;
}

/** Fits a block's vocabulary on lower-cased training documents. Deterministic: ties break on the n-gram itself. */
export function fitBlock(spec: NgramBlockSpec, lowerDocs: readonly string[]): NgramBlock {
  const ngrams: string[][] = [];
  const dfs: number[] = [];
  for (let n = spec.minN; n <= spec.maxN; n++) {
    const limit = spec.maxFeaturesPerN[n - spec.minN] ?? 0;
    if (limit <= 0) continue;
    // Document frequency: count a key once per document by remembering the last document that counted it.
    const df = new Map<string, number>();
    const lastDoc = new Map<string, number>();
    lowerDocs.forEach((doc, d) => {
      forEachNgram(spec.tokens, doc, n, (key) => {
        if (lastDoc.get(key) === d) return;
        lastDoc.set(key, d);
        df.set(key, (df.get(key) ?? 0) + 1);
      });
    });
    const kept = [...df.entries()]
      .filter(([, count]) => count >= spec.minDf)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, limit);
    for (const [key, count] of kept) {
      ngrams.push(spec.tokens === "word" ? key.split(KEY_SEP) : Array.from(key));
      dfs.push(count);
    }
  }
  const nDocs = lowerDocs.length;
  const idf = dfs.map((df) => Math.fround(Math.log((1 + nDocs) / (1 + df)) + 1));
  return { spec, ngrams, idf };
}

/**
 * Turns documents into the block's feature rows exactly as the ONNX graph does: n-gram counts (TfIdfVectorizer,
 * mode TF), then log(1 + count) × idf (or, for a binary block, min(count, 1)), then L2 normalisation of the row (an
 * empty row stays zero).
 */
export class BlockVectorizer {
  private readonly index = new Map<string, number>();
  private readonly lengths: number[];

  constructor(readonly block: NgramBlock) {
    const sep = block.spec.tokens === "word" ? KEY_SEP : "";
    block.ngrams.forEach((g, col) => {
      this.index.set(g.join(sep), col);
    });
    this.lengths = [...new Set(block.ngrams.map((g) => g.length))].sort((a, b) => a - b);
  }

  get size(): number {
    return this.block.ngrams.length;
  }

  /** Column counts of one lower-cased document: column → count. */
  counts(lower: string): Map<number, number> {
    const counts = new Map<number, number>();
    for (const n of this.lengths) {
      forEachNgram(this.block.spec.tokens, lower, n, (key) => {
        const col = this.index.get(key);
        if (col !== undefined) counts.set(col, (counts.get(col) ?? 0) + 1);
      });
    }
    return counts;
  }

  /** Weighted, L2-normalised sparse row as parallel arrays sorted by column. */
  row(lower: string): { cols: number[]; values: number[] } {
    const counts = [...this.counts(lower).entries()].sort((a, b) => a[0] - b[0]);
    const cols: number[] = [];
    const values: number[] = [];
    let sq = 0;
    const binary = this.block.spec.weighting === "binary";
    for (const [col, count] of counts) {
      const v = binary ? 1 : Math.fround(Math.log(1 + count)) * (this.block.idf[col] ?? 0);
      cols.push(col);
      values.push(v);
      sq += v * v;
    }
    const norm = Math.max(Math.sqrt(sq), L2_EPSILON);
    for (let k = 0; k < values.length; k++) values[k] = (values[k] ?? 0) / norm;
    return { cols, values };
  }
}

/** The floor of the L2 norm, so that a row without any known n-gram stays all zero instead of becoming NaN. */
export const L2_EPSILON = 1e-12;

/** The fitted feature extractor of a model: blocks side by side (columns of block k follow those of block k-1). */
export interface FeatureSet {
  blocks: NgramBlock[];
}

export function fitFeatures(specs: readonly NgramBlockSpec[], texts: readonly string[]): FeatureSet {
  const lower = texts.map(lowerCase);
  return { blocks: specs.map((spec) => fitBlock(spec, lower)) };
}

export function featureDim(features: FeatureSet): number {
  return features.blocks.reduce((sum, b) => sum + b.ngrams.length, 0);
}

/** Vectorises raw texts (the same strings the ONNX graph receives) into one sparse matrix. */
export function vectorize(features: FeatureSet, texts: readonly string[]): SparseMatrix {
  const vectorizers = features.blocks.map((b) => new BlockVectorizer(b));
  const cols = featureDim(features);
  const rowPtr = new Int32Array(texts.length + 1);
  const colIdx: number[] = [];
  const values: number[] = [];
  texts.forEach((text, r) => {
    const lower = lowerCase(text);
    let offset = 0;
    for (const v of vectorizers) {
      const row = v.row(lower);
      for (let k = 0; k < row.cols.length; k++) {
        colIdx.push((row.cols[k] ?? 0) + offset);
        values.push(row.values[k] ?? 0);
      }
      offset += v.size;
    }
    rowPtr[r + 1] = colIdx.length;
  });
  return {
    rows: texts.length,
    cols,
    rowPtr,
    colIdx: Int32Array.from(colIdx),
    values: Float64Array.from(values),
  };
}

/** The given rows of a sparse matrix, in the given order. */
export function selectRows(x: SparseMatrix, rows: readonly number[]): SparseMatrix {
  let nnz = 0;
  for (const r of rows) nnz += (x.rowPtr[r + 1] ?? 0) - (x.rowPtr[r] ?? 0);
  const rowPtr = new Int32Array(rows.length + 1);
  const colIdx = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let k = 0;
  rows.forEach((r, i) => {
    const start = x.rowPtr[r] ?? 0;
    const end = x.rowPtr[r + 1] ?? 0;
    colIdx.set(x.colIdx.subarray(start, end), k);
    values.set(x.values.subarray(start, end), k);
    k += end - start;
    rowPtr[i + 1] = k;
  });
  return { rows: rows.length, cols: x.cols, rowPtr, colIdx, values };
}

/** Stacks matrices with the same columns on top of each other. */
export function stackRows(parts: readonly SparseMatrix[]): SparseMatrix {
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const nnz = parts.reduce((n, p) => n + p.colIdx.length, 0);
  const rowPtr = new Int32Array(rows + 1);
  const colIdx = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let r = 0;
  let k = 0;
  for (const p of parts) {
    colIdx.set(p.colIdx, k);
    values.set(p.values, k);
    for (let i = 1; i <= p.rows; i++) rowPtr[r + i] = k + (p.rowPtr[i] ?? 0);
    r += p.rows;
    k += p.colIdx.length;
  }
  return { rows, cols: parts[0]?.cols ?? 0, rowPtr, colIdx, values };
}
