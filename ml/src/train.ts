import {
  type ClassifierParams,
  createClassifier,
  lossAndGradient,
  paramTensors,
  predictProba,
  regularised,
} from "./classifier.js";
import type { SparseMatrix } from "./features.js";
import { createRng, shuffleInPlace } from "./rng.js";

export interface TrainConfig {
  hidden: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  l2: number;
  /** Extra sample weight of hard-ham training messages (1 = none). */
  hardHamWeight: number;
  seed: number;
}

export interface EpochLog {
  epoch: number;
  trainLoss: number;
  /** NaN when no held-out set was given. */
  validationLoss: number;
}

/** Adam (Kingma & Ba) over dense parameter tensors. */
export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;

  /**
   * `l2[t]` adds the gradient of (l2[t] / 2)·‖params[t]‖² inside the update pass (the same arithmetic as adding it
   * to the gradient beforehand, without a second pass over the embedding matrix).
   */
  constructor(
    private readonly params: Float64Array[],
    private readonly lr: number,
    private readonly l2: readonly number[] = [],
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  step(grads: Float64Array[]): void {
    this.t += 1;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    const { beta1, beta2, eps, lr } = this;
    this.params.forEach((p, ti) => {
      const g = grads[ti];
      const m = this.m[ti];
      const v = this.v[ti];
      if (g === undefined || m === undefined || v === undefined) throw new Error("tensor count mismatch");
      const decay = this.l2[ti] ?? 0;
      for (let i = 0; i < p.length; i++) {
        const gi = (g[i] ?? 0) + decay * (p[i] ?? 0);
        const mi = beta1 * (m[i] ?? 0) + (1 - beta1) * gi;
        const vi = beta2 * (v[i] ?? 0) + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = (p[i] ?? 0) - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
      }
    });
  }
}

export function meanLoss(p: ClassifierParams, x: SparseMatrix, y: Uint8Array): number {
  const probs = predictProba(p, x);
  let loss = 0;
  for (let i = 0; i < x.rows; i++) {
    const q = Math.min(Math.max(probs[i] ?? 0, 1e-15), 1 - 1e-15);
    loss -= (y[i] ?? 0) === 1 ? Math.log(q) : Math.log(1 - q);
  }
  return loss / Math.max(1, x.rows);
}

/**
 * Trains with seeded mini-batch Adam. Deterministic: the same inputs and config give bit-identical parameters
 * (JavaScript doubles, a fixed iteration order, a seeded shuffle).
 */
export function trainClassifier(
  config: TrainConfig,
  train: { x: SparseMatrix; y: Uint8Array; weights: Float64Array },
  validation?: { x: SparseMatrix; y: Uint8Array },
  onEpoch?: (log: EpochLog) => void,
): { params: ClassifierParams; history: EpochLog[] } {
  const rng = createRng(config.seed);
  let positives = 0;
  for (const label of train.y) positives += label;
  const prior = Math.min(Math.max(positives / Math.max(1, train.y.length), 0.01), 0.99);
  const params = createClassifier(train.x.cols, config.hidden, rng, prior);
  const tensors = paramTensors(params);
  const grads = tensors.map((t) => new Float64Array(t.length));
  // The L2 penalty is applied inside the optimiser step; the reported losses are the data losses.
  const adam = new Adam(
    tensors,
    config.learningRate,
    regularised(params).map((isWeight) => (isWeight ? config.l2 : 0)),
  );
  const order = Array.from({ length: train.x.rows }, (_, i) => i);
  const history: EpochLog[] = [];
  for (let epoch = 1; epoch <= config.epochs; epoch++) {
    shuffleInPlace(order, rng);
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < order.length; start += config.batchSize) {
      const batch = order.slice(start, start + config.batchSize);
      for (const g of grads) g.fill(0);
      lossSum += lossAndGradient(params, train.x, train.y, train.weights, batch, 0, grads);
      adam.step(grads);
      batches += 1;
    }
    const log = {
      epoch,
      trainLoss: lossSum / Math.max(1, batches),
      validationLoss: validation === undefined ? Number.NaN : meanLoss(params, validation.x, validation.y),
    };
    history.push(log);
    onEpoch?.(log);
  }
  return { params, history };
}
