import { describe, expect, it } from "vitest";
import { createClassifier, lossAndGradient, paramTensors } from "./classifier.js";
import type { SparseMatrix } from "./features.js";
import { createRng } from "./rng.js";
import { Adam } from "./train.js";

function randomProblem(rows: number, cols: number, seed: number) {
  const rng = createRng(seed);
  const rowPtr = new Int32Array(rows + 1);
  const colIdx: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    const used = new Set<number>();
    for (let k = 0; k < 4; k++) used.add(rng.int(cols));
    for (const c of [...used].sort((a, b) => a - b)) {
      colIdx.push(c);
      values.push(rng.normal());
    }
    rowPtr[r + 1] = colIdx.length;
  }
  const x: SparseMatrix = {
    rows,
    cols,
    rowPtr,
    colIdx: Int32Array.from(colIdx),
    values: Float64Array.from(values),
  };
  const y = Uint8Array.from({ length: rows }, () => (rng.next() < 0.4 ? 1 : 0));
  const weights = Float64Array.from({ length: rows }, () => 0.5 + rng.next());
  return { x, y, weights, rng };
}

function gradientCheck(hidden: number) {
  const { x, y, weights, rng } = randomProblem(12, 7, hidden + 1);
  const params = createClassifier(7, hidden, rng, 0.4);
  // Move the biases and weights away from their initial values so every ReLU path is exercised.
  for (const t of paramTensors(params))
    for (let i = 0; i < t.length; i++) t[i] = (t[i] ?? 0) + 0.3 * rng.normal();
  const rows = Array.from({ length: x.rows }, (_, i) => i);
  const l2 = 0.01;
  const tensors = paramTensors(params);
  const grads = tensors.map((t) => new Float64Array(t.length));
  lossAndGradient(params, x, y, weights, rows, l2, grads);
  const noGrads = () => tensors.map((t) => new Float64Array(t.length));
  const h = 1e-6;
  let worst = 0;
  tensors.forEach((t, ti) => {
    for (let i = 0; i < t.length; i++) {
      const saved = t[i] ?? 0;
      t[i] = saved + h;
      const up = lossAndGradient(params, x, y, weights, rows, l2, noGrads());
      t[i] = saved - h;
      const down = lossAndGradient(params, x, y, weights, rows, l2, noGrads());
      t[i] = saved;
      const numeric = (up - down) / (2 * h);
      const analytic = grads[ti]?.[i] ?? Number.NaN;
      worst = Math.max(
        worst,
        Math.abs(numeric - analytic) / Math.max(1e-8, Math.abs(numeric) + Math.abs(analytic)),
      );
    }
  });
  return worst;
}

describe("the classifier's analytic gradient", () => {
  it("matches central differences for logistic regression", () => {
    expect(gradientCheck(0)).toBeLessThan(1e-6);
  });

  it("matches central differences for the embedding bag with a ReLU hidden layer", () => {
    expect(gradientCheck(5)).toBeLessThan(1e-5);
  });
});

describe("Adam", () => {
  it("minimises a quadratic", () => {
    const p = Float64Array.of(3, -2);
    const adam = new Adam([p], 0.1);
    for (let i = 0; i < 500; i++) adam.step([Float64Array.of(2 * (p[0] ?? 0), 2 * (p[1] ?? 0))]);
    expect(Math.abs(p[0] ?? 1)).toBeLessThan(1e-2);
    expect(Math.abs(p[1] ?? 1)).toBeLessThan(1e-2);
  });
});
