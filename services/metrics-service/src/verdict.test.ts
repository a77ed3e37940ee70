import { CheckOutcome, Decision } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { describe, expect, it } from "vitest";
import { decide, type VerdictInput, type VerdictThresholds } from "./verdict.js";

const thresholds: VerdictThresholds = {
  minPairs: 100,
  minAgreement: 0.9,
  maxErrorRateIncrease: 0.01,
  maxLatencyP99Ratio: 1.5,
  latencySlackMs: 2,
  minFeedback: 30,
  maxAccuracyDrop: 0.02,
  minCoverage: 0.9,
  maxShadowSilenceMs: 30_000,
};

/** A shadow that meets every threshold. */
const good: VerdictInput = {
  pairCount: 1000,
  allPairCount: 1000,
  conflictCount: 0,
  callerErrorPairCount: 0,
  expectedMirrorRatio: 1,
  settledPrimaryCount: 1000,
  mirroredPrimaryCount: 1000,
  coverage: 1,
  shadowSilenceMs: 0,
  comparedPairCount: 1000,
  agreementRate: 0.98,
  agreementLowerBound: 0.97,
  primaryErrorRate: 0.001,
  shadowErrorRate: 0.002,
  primaryLatencyP99Ms: 10,
  shadowLatencyP99Ms: 12,
  primaryFeedbackCount: 50,
  primaryAccuracy: 0.9,
  shadowFeedbackCount: 50,
  shadowAccuracy: 0.92,
};

const outcomes = (input: VerdictInput) =>
  Object.fromEntries(decide(input, thresholds).checks.map((c) => [c.name, c.outcome]));

describe("decide", () => {
  it("promotes a shadow that meets every threshold, listing every check that passed", () => {
    const verdict = decide(good, thresholds);
    expect(verdict.decision).toBe(Decision.PROMOTE);
    expect(verdict.checks.map((c) => [c.name, c.outcome])).toEqual([
      ["min_pairs", CheckOutcome.PASS],
      ["coverage", CheckOutcome.PASS],
      ["shadow_silence", CheckOutcome.PASS],
      ["agreement_lower_bound", CheckOutcome.PASS],
      ["shadow_error_rate", CheckOutcome.PASS],
      ["latency_p99_ratio", CheckOutcome.PASS],
      ["feedback_accuracy", CheckOutcome.PASS],
    ]);
    expect(verdict.reasons).toHaveLength(7);
    const agreement = verdict.checks.find((c) => c.name === "agreement_lower_bound");
    expect(agreement?.observed).toBe(0.97);
    expect(agreement?.threshold).toBe(0.9);
  });

  it("says INSUFFICIENT_DATA below the minimum pairs and skips every other check, even a bad one", () => {
    const verdict = decide({ ...good, pairCount: 99, allPairCount: 99, shadowErrorRate: 1 }, thresholds);
    expect(verdict.decision).toBe(Decision.INSUFFICIENT_DATA);
    expect(verdict.reasons).toEqual([
      "Only 99 judged pairs observed; at least 100 are needed before a decision.",
    ]);
    expect(verdict.checks.every((c) => c.outcome === CheckOutcome.SKIPPED)).toBe(true);
  });

  it("decides at exactly the minimum number of pairs", () => {
    expect(decide({ ...good, pairCount: 100 }, thresholds).decision).toBe(Decision.PROMOTE);
  });

  it("holds when the shadow answered materially less than the expected mirror share, saying so", () => {
    const input = { ...good, settledPrimaryCount: 2000, mirroredPrimaryCount: 1000, coverage: 0.5 };
    const verdict = decide(input, thresholds);
    expect(verdict.decision).toBe(Decision.HOLD);
    expect(verdict.reasons).toEqual([
      "Coverage 50.0 %: the shadow has a record for 1000 of the 2000 settled primary records, 2000 expected at a " +
        "100.0 % mirror share; below 90.0 %, so the shadow was not tested on the traffic it would serve " +
        "(mirror dropped, shadow down, or its reports lost).",
    ]);
    expect(outcomes({ ...input, coverage: 0.9 }).coverage).toBe(CheckOutcome.PASS);
    // Against a sampled mirror, the same count is full coverage.
    expect(outcomes({ ...input, expectedMirrorRatio: 0.5, coverage: 1 }).coverage).toBe(CheckOutcome.PASS);
    // Mirroring off: nothing to measure.
    expect(outcomes({ ...input, expectedMirrorRatio: 0, coverage: 0 }).coverage).toBe(CheckOutcome.SKIPPED);
  });

  it("holds when primary records keep arriving after the shadow's stopped, scaled by the mirror share", () => {
    const input = { ...good, shadowSilenceMs: 30_001 };
    const verdict = decide(input, thresholds);
    expect(verdict.decision).toBe(Decision.HOLD);
    expect(verdict.reasons[0]).toMatch(/shadow's records stopped: primary records kept arriving for 30\.0 s/);
    expect(outcomes({ ...good, shadowSilenceMs: 30_000 }).shadow_silence).toBe(CheckOutcome.PASS);
    expect(outcomes({ ...input, expectedMirrorRatio: 0.1 }).shadow_silence).toBe(CheckOutcome.PASS);
    expect(outcomes({ ...good, shadowSilenceMs: 300_001, expectedMirrorRatio: 0.1 }).shadow_silence).toBe(
      CheckOutcome.WARN,
    );
  });

  it("still rolls back on evidence from the pairs when coverage is low", () => {
    const input = { ...good, coverage: 0.5, shadowErrorRate: 0.5 };
    expect(decide(input, thresholds).decision).toBe(Decision.ROLLBACK);
  });

  it("counts only judged pairs towards the minimum and says what was left out", () => {
    const verdict = decide(
      { ...good, pairCount: 99, allPairCount: 120, conflictCount: 1, callerErrorPairCount: 20 },
      thresholds,
    );
    expect(verdict.decision).toBe(Decision.INSUFFICIENT_DATA);
    expect(verdict.reasons[0]).toBe(
      "Only 99 judged pairs observed (120 paired; left out: 1 with different inputs, 20 refused by both for the " +
        "caller's fault); at least 100 are needed before a decision.",
    );
  });

  it("holds when the agreement's lower bound is below the threshold", () => {
    const verdict = decide({ ...good, agreementRate: 0.9, agreementLowerBound: 0.88 }, thresholds);
    expect(verdict.decision).toBe(Decision.HOLD);
    expect(verdict.reasons).toHaveLength(1);
    expect(verdict.reasons[0]).toMatch(/lower bound 88\.0 % is below 90\.0 %/);
  });

  it("holds when no pair could be compared because one side always failed, without an error regression", () => {
    const verdict = decide(
      {
        ...good,
        comparedPairCount: 0,
        agreementRate: 0,
        agreementLowerBound: 0,
        primaryErrorRate: 1,
        shadowErrorRate: 1,
      },
      thresholds,
    );
    expect(verdict.decision).toBe(Decision.HOLD);
    expect(verdict.reasons[0]).toMatch(/No pair could be compared/);
  });

  it("rolls back when the shadow fails more often than the primary beyond the margin", () => {
    const verdict = decide({ ...good, primaryErrorRate: 0.01, shadowErrorRate: 0.021 }, thresholds);
    expect(verdict.decision).toBe(Decision.ROLLBACK);
    expect(outcomes({ ...good, primaryErrorRate: 0.01, shadowErrorRate: 0.021 }).shadow_error_rate).toBe(
      CheckOutcome.FAIL,
    );
    expect(verdict.reasons[0]).toMatch(/Shadow error rate 2\.1 % exceeds the primary's 1\.0 %/);
  });

  it("accepts an error rate exactly at the margin", () => {
    expect(decide({ ...good, primaryErrorRate: 0.01, shadowErrorRate: 0.02 }, thresholds).decision).toBe(
      Decision.PROMOTE,
    );
  });

  it("holds when the shadow's p99 latency is above the ratio and beyond the slack", () => {
    const input = { ...good, primaryLatencyP99Ms: 10, shadowLatencyP99Ms: 16 };
    const verdict = decide(input, thresholds);
    expect(verdict.decision).toBe(Decision.HOLD);
    expect(verdict.reasons[0]).toMatch(/1\.60× the primary's/);
    const check = verdict.checks.find((c) => c.name === "latency_p99_ratio");
    expect(check?.observed).toBeCloseTo(1.6);
  });

  it("passes a large latency ratio whose absolute difference is within the slack", () => {
    const input = { ...good, primaryLatencyP99Ms: 0.5, shadowLatencyP99Ms: 2 };
    expect(outcomes(input).latency_p99_ratio).toBe(CheckOutcome.PASS);
    expect(decide(input, thresholds).decision).toBe(Decision.PROMOTE);
  });

  it("skips latency when a role has no successful record, without blocking", () => {
    const input = { ...good, shadowLatencyP99Ms: 0 };
    expect(outcomes(input).latency_p99_ratio).toBe(CheckOutcome.SKIPPED);
    expect(decide(input, thresholds).decision).toBe(Decision.PROMOTE);
  });

  it("rolls back when the shadow is less accurate on feedback beyond the margin", () => {
    const input = { ...good, primaryAccuracy: 0.9, shadowAccuracy: 0.85 };
    const verdict = decide(input, thresholds);
    expect(verdict.decision).toBe(Decision.ROLLBACK);
    expect(verdict.reasons[0]).toMatch(/Shadow accuracy 85\.0 % .* worse than the primary's 90\.0 %/);
  });

  it("does not judge accuracy before both roles have enough feedback, and says so when promoting", () => {
    const input = { ...good, shadowFeedbackCount: 29, shadowAccuracy: 0 };
    const verdict = decide(input, thresholds);
    expect(outcomes(input).feedback_accuracy).toBe(CheckOutcome.SKIPPED);
    expect(verdict.decision).toBe(Decision.PROMOTE);
    expect(verdict.reasons.at(-1)).toMatch(
      /Accuracy not judged: 29 feedback-labelled predictions per role, 30/,
    );
  });

  it("lists failures and then warnings when rolling back", () => {
    const verdict = decide(
      { ...good, shadowErrorRate: 0.5, agreementLowerBound: 0.5, shadowAccuracy: 0.5 },
      thresholds,
    );
    expect(verdict.decision).toBe(Decision.ROLLBACK);
    expect(verdict.reasons).toHaveLength(3);
    expect(verdict.reasons[0]).toMatch(/error rate/);
    expect(verdict.reasons[1]).toMatch(/accuracy/);
    expect(verdict.reasons[2]).toMatch(/Agreement/);
  });

  it("lets a failure win over a warning", () => {
    const input = { ...good, shadowLatencyP99Ms: 100, shadowAccuracy: 0.5 };
    expect(decide(input, thresholds).decision).toBe(Decision.ROLLBACK);
  });
});
