import type { SparseMatrix } from "./features.js";
import type { Rng } from "./rng.js";

/**
 * A binary classifier over sparse feature rows: logistic regression when `hidden` is 0, otherwise an embedding bag
 * (the tf-idf weighted sum of `hidden`-dimensional feature embeddings, i.e. a sparse first layer) followed by ReLU and
 * a logistic output. The output is the spam logit z; P(spam) = sigmoid(z).
 */
export interface ClassifierParams {
  inputDim: number;
  hidden: number;
  /** hidden > 0: the embedding matrix, row-major [inputDim, hidden]; hidden = 0: unused (length 0). */
  w1: Float64Array;
  /** hidden > 0: hidden bias [hidden]. */
  b1: Float64Array;
  /** Output weights: [hidden] when hidden > 0, else [inputDim]. */
  w2: Float64Array;
  /** Output bias [1]. */
  b2: Float64Array;
}

/** Standard deviation of the initial embedding weights (inputs are L2-normalised rows). */
const INIT_SCALE = 0.1;
export function createClassifier(
  inputDim: number,
  hidden: number,
  rng: Rng,
  prior: number,
): ClassifierParams {
  const w1 = new Float64Array(hidden > 0 ? inputDim * hidden : 0);
  const b1 = new Float64Array(hidden);
  const w2 = new Float64Array(hidden > 0 ? hidden : inputDim);
  if (hidden > 0) {
    for (let i = 0; i < w1.length; i++) w1[i] = rng.normal() * INIT_SCALE;
    b1.fill(0.1);
    for (let i = 0; i < w2.length; i++) w2[i] = rng.normal() / Math.sqrt(hidden);
  }
  const b2 = Float64Array.of(Math.log(prior / (1 - prior)));
  return { inputDim, hidden, w1, b1, w2, b2 };
}

/** The parameter tensors in a fixed order (for the optimiser and the gradient check). */
export function paramTensors(p: ClassifierParams): Float64Array[] {
  return p.hidden > 0 ? [p.w1, p.b1, p.w2, p.b2] : [p.w2, p.b2];
}

/** Which tensors are weights (L2-regularised) rather than biases, aligned with paramTensors. */
export function regularised(p: ClassifierParams): boolean[] {
  return p.hidden > 0 ? [true, false, true, false] : [true, false];
}

export function cloneParams(p: ClassifierParams): ClassifierParams {
  return { ...p, w1: p.w1.slice(), b1: p.b1.slice(), w2: p.w2.slice(), b2: p.b2.slice() };
}

/** Rounds every parameter to float32: the trainer's in-memory predictions then use exactly the exported weights. */
export function roundToFloat32(p: ClassifierParams): ClassifierParams {
  const r = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
  return { ...p, w1: r(p.w1), b1: r(p.b1), w2: r(p.w2), b2: r(p.b2) };
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Spam logit of one row; `hiddenOut` (length hidden) receives the post-ReLU activations. */
export function logitOfRow(
  p: ClassifierParams,
  x: SparseMatrix,
  row: number,
  hiddenOut?: Float64Array,
): number {
  const start = x.rowPtr[row] ?? 0;
  const end = x.rowPtr[row + 1] ?? 0;
  if (p.hidden === 0) {
    let z = p.b2[0] ?? 0;
    for (let k = start; k < end; k++) z += (x.values[k] ?? 0) * (p.w2[x.colIdx[k] ?? 0] ?? 0);
    return z;
  }
  const h = hiddenOut ?? new Float64Array(p.hidden);
  const H = p.hidden;
  for (let j = 0; j < H; j++) h[j] = p.b1[j] ?? 0;
  for (let k = start; k < end; k++) {
    const v = x.values[k] ?? 0;
    const base = (x.colIdx[k] ?? 0) * H;
    for (let j = 0; j < H; j++) h[j] = (h[j] ?? 0) + v * (p.w1[base + j] ?? 0);
  }
  let z = p.b2[0] ?? 0;
  for (let j = 0; j < H; j++) {
    const a = Math.max(0, h[j] ?? 0);
    h[j] = a;
    z += a * (p.w2[j] ?? 0);
  }
  return z;
}

export function predictProba(p: ClassifierParams, x: SparseMatrix): Float64Array {
  const out = new Float64Array(x.rows);
  const h = new Float64Array(p.hidden);
  for (let r = 0; r < x.rows; r++) out[r] = sigmoid(logitOfRow(p, x, r, h));
  return out;
}

/**
 * Weighted mean binary cross-entropy over `rows` plus (l2 / 2)·‖weights‖², and its gradient (accumulated into
 * `grads`, aligned with paramTensors, which must be zeroed by the caller). Returns the loss.
 */
export function lossAndGradient(
  p: ClassifierParams,
  x: SparseMatrix,
  y: Uint8Array,
  weights: Float64Array,
  rows: ArrayLike<number>,
  l2: number,
  grads: Float64Array[],
): number {
  const H = p.hidden;
  const h = new Float64Array(H);
  let totalWeight = 0;
  for (let i = 0; i < rows.length; i++) totalWeight += weights[rows[i] ?? 0] ?? 0;
  let loss = 0;
  const [gW1, gB1, gW2, gB2] = H > 0 ? grads : [undefined, undefined, grads[0], grads[1]];
  if (gW2 === undefined || gB2 === undefined) throw new Error("gradient tensors missing");
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] ?? 0;
    const w = (weights[r] ?? 0) / totalWeight;
    const z = logitOfRow(p, x, r, h);
    const label = y[r] ?? 0;
    // log(1 + e^z) - label·z, computed stably.
    const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
    loss += w * (softplus - label * z);
    const dz = w * (sigmoid(z) - label);
    gB2[0] = (gB2[0] ?? 0) + dz;
    const start = x.rowPtr[r] ?? 0;
    const end = x.rowPtr[r + 1] ?? 0;
    if (H === 0) {
      for (let k = start; k < end; k++) {
        const c = x.colIdx[k] ?? 0;
        gW2[c] = (gW2[c] ?? 0) + dz * (x.values[k] ?? 0);
      }
      continue;
    }
    if (gW1 === undefined || gB1 === undefined) throw new Error("gradient tensors missing");
    const dh = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const a = h[j] ?? 0;
      gW2[j] = (gW2[j] ?? 0) + dz * a;
      dh[j] = a > 0 ? dz * (p.w2[j] ?? 0) : 0;
      gB1[j] = (gB1[j] ?? 0) + (dh[j] ?? 0);
    }
    for (let k = start; k < end; k++) {
      const v = x.values[k] ?? 0;
      const base = (x.colIdx[k] ?? 0) * H;
      for (let j = 0; j < H; j++) gW1[base + j] = (gW1[base + j] ?? 0) + v * (dh[j] ?? 0);
    }
  }
  if (l2 === 0) return loss;
  const tensors = paramTensors(p);
  const isWeight = regularised(p);
  tensors.forEach((t, ti) => {
    if (!isWeight[ti]) return;
    const g = grads[ti];
    if (g === undefined) return;
    let sq = 0;
    for (let i = 0; i < t.length; i++) {
      const v = t[i] ?? 0;
      sq += v * v;
      g[i] = (g[i] ?? 0) + l2 * v;
    }
    loss += 0.5 * l2 * sq;
  });
  return loss;
}
