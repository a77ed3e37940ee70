import { MAX_MODEL_BYTES } from "./constants.js";
import type { Evaluation } from "./evaluate.js";
import type { ModelManifest } from "./manifest.js";
import type { TrainedSummary } from "./trained-summary.js";

export interface GateResult {
  /** The model the gate judges. */
  model: string;
  gate: string;
  passed: boolean;
  detail: string;
  /** A failed blocking gate stops publication; a failed non-blocking gate is recorded in the model's report only. */
  blocking: boolean;
}

/** The quality gates of one model, on its test metrics (integrity gates apply to every model and always block). */
export interface QualityGates {
  minTestF1?: number;
  maxHardHamFpr?: number;
  /** Its test F1 must be higher than this model's. */
  beatsF1Of?: string;
  /** Its test F1 must be at least this model's minus `margin`. */
  f1WithinOf?: { model: string; margin: number };
  /** Its model.onnx must be at most `share` of this model's. */
  maxSizeShareOf?: { model: string; share: number };
  /**
   * true: a miss stops the pipeline and nothing is published. false (a candidate whose gates are recorded, not
   * enforced): a miss is written into its report.json / report.md and it is still published, for shadow testing to judge.
   */
  blocking: boolean;
}

export const QUALITY_GATES: Readonly<Record<string, QualityGates>> = {
  "spam-v2": { minTestF1: 0.98, maxHardHamFpr: 0.06, beatsF1Of: "spam-v1", blocking: true },
  "spam-lite": {
    f1WithinOf: { model: "spam-v1", margin: 0.01 },
    maxHardHamFpr: 0.06,
    maxSizeShareOf: { model: "spam-v1", share: 0.1 },
    blocking: false,
  },
};

/** The gates every freshly built model must pass: ONNX Runtime agrees with the trainer, training repeats, size. */
export function integrityGates(
  name: string,
  evaluation: Evaluation,
  summary: TrainedSummary,
  onnxBytes: number,
): GateResult[] {
  return [
    {
      model: name,
      gate: `${name} parity`,
      passed: evaluation.parity.passed,
      detail: `max |onnx - trainer| ${evaluation.parity.maxAbsDifference.toExponential(2)} over ${evaluation.parity.examples} test texts (tolerance ${evaluation.parity.tolerance}), ${evaluation.parity.labelMismatches} label mismatches`,
      blocking: true,
    },
    {
      model: name,
      gate: `${name} repeatability`,
      passed: summary.repeatability.identical,
      detail: `${summary.repeatability.runs} trainings, sha256 ${[...new Set(summary.repeatability.sha256s)].map((s) => s.slice(0, 12)).join(" vs ")}`,
      blocking: true,
    },
    {
      model: name,
      gate: `${name} size`,
      passed: onnxBytes <= MAX_MODEL_BYTES,
      detail: `${onnxBytes} bytes (limit ${MAX_MODEL_BYTES})`,
      blocking: true,
    },
  ];
}

/**
 * The quality gates of every model in `table` that has a manifest; `manifestOf` gives the fresh manifest of a model,
 * else the bundled one. A gate that compares with another model is skipped when that model has no manifest.
 */
export function qualityGates(
  manifestOf: (name: string) => ModelManifest | undefined,
  table: Readonly<Record<string, QualityGates>> = QUALITY_GATES,
): GateResult[] {
  const gates: GateResult[] = [];
  for (const [name, g] of Object.entries(table)) {
    const m = manifestOf(name);
    if (m === undefined) continue;
    const add = (gate: string, passed: boolean, detail: string) =>
      gates.push({ model: name, gate: `${name} ${gate}`, passed, detail, blocking: g.blocking });
    if (g.minTestF1 !== undefined) {
      add("test F1", m.metrics.f1 >= g.minTestF1, `${m.metrics.f1.toFixed(4)} (need >= ${g.minTestF1})`);
    }
    if (g.f1WithinOf !== undefined) {
      const other = manifestOf(g.f1WithinOf.model);
      if (other) {
        const need = other.metrics.f1 - g.f1WithinOf.margin;
        add(
          `test F1 within ${g.f1WithinOf.margin} of ${g.f1WithinOf.model}`,
          m.metrics.f1 >= need,
          `${m.metrics.f1.toFixed(4)} (need >= ${need.toFixed(4)} = ${other.metrics.f1.toFixed(4)} - ${g.f1WithinOf.margin})`,
        );
      }
    }
    if (g.maxHardHamFpr !== undefined) {
      add(
        "hard-ham FPR",
        m.metrics.hardHamFalsePositiveRate <= g.maxHardHamFpr,
        `${(100 * m.metrics.hardHamFalsePositiveRate).toFixed(2)} % (need <= ${100 * g.maxHardHamFpr} %, threshold ${m.decisionThreshold} chosen without the test split)`,
      );
    }
    if (g.beatsF1Of !== undefined) {
      const other = manifestOf(g.beatsF1Of);
      if (other) {
        add(
          `beats ${g.beatsF1Of} on test F1`,
          m.metrics.f1 > other.metrics.f1,
          `${m.metrics.f1.toFixed(4)} vs ${other.metrics.f1.toFixed(4)}`,
        );
      }
    }
    if (g.maxSizeShareOf !== undefined) {
      const other = manifestOf(g.maxSizeShareOf.model);
      if (other) {
        add(
          `size <= ${100 * g.maxSizeShareOf.share} % of ${g.maxSizeShareOf.model}`,
          m.sizeBytes <= g.maxSizeShareOf.share * other.sizeBytes,
          `${m.sizeBytes} bytes = ${((100 * m.sizeBytes) / other.sizeBytes).toFixed(1)} % of ${other.sizeBytes}`,
        );
      }
    }
  }
  return gates;
}

/** Whether the models may be published: every blocking gate passed (non-blocking misses are only recorded). */
export function publishable(gates: readonly GateResult[]): boolean {
  return gates.every((g) => g.passed || !g.blocking);
}
