import { create } from "@bufbuild/protobuf";
import {
  CheckOutcome,
  Decision,
  type Verdict,
  type VerdictCheck,
  VerdictCheckSchema,
  VerdictSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";

/** The configurable thresholds of the verdict (README: "The verdict"). */
export interface VerdictThresholds {
  /** Pairs needed before any decision but INSUFFICIENT_DATA. */
  minPairs: number;
  /** PROMOTE needs the Wilson 95 % lower bound of agreement at least this; below: HOLD. */
  minAgreement: number;
  /** ROLLBACK when shadow error rate − primary error rate exceeds this. */
  maxErrorRateIncrease: number;
  /** HOLD when shadow p99 / primary p99 exceeds this (and the difference exceeds the slack). */
  maxLatencyP99Ratio: number;
  /** A p99 difference up to this many ms never fails the latency check. */
  latencySlackMs: number;
  /** Feedback-labelled predictions each role needs before accuracy is compared. */
  minFeedback: number;
  /** ROLLBACK when shadow accuracy < primary accuracy − this. */
  maxAccuracyDrop: number;
}

/** What the verdict looks at, taken from the report. */
export interface VerdictInput {
  /** Requests with both a primary and a shadow record. */
  pairCount: number;
  /** Pairs where both calls succeeded, so the labels could be compared. */
  comparedPairCount: number;
  agreementRate: number;
  agreementLowerBound: number;
  primaryErrorRate: number;
  shadowErrorRate: number;
  /** 0 when unknown. */
  primaryLatencyP99Ms: number;
  shadowLatencyP99Ms: number;
  primaryFeedbackCount: number;
  primaryAccuracy: number;
  shadowFeedbackCount: number;
  shadowAccuracy: number;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const ms = (x: number) => `${x.toFixed(2)} ms`;

function check(
  name: string,
  outcome: CheckOutcome,
  observed: number,
  threshold: number,
  message: string,
): VerdictCheck {
  return create(VerdictCheckSchema, { name, outcome, observed, threshold, message });
}

/** The checks, in the order they are listed. Every check is evaluated, whatever the others say. */
export function evaluateChecks(input: VerdictInput, t: VerdictThresholds): VerdictCheck[] {
  const enough = input.pairCount >= t.minPairs;
  const skip = (name: string, observed: number, threshold: number, what: string) =>
    check(
      name,
      CheckOutcome.SKIPPED,
      observed,
      threshold,
      `${what} not judged: only ${input.pairCount} of the ${t.minPairs} pairs needed.`,
    );
  const checks: VerdictCheck[] = [];

  checks.push(
    enough
      ? check(
          "min_pairs",
          CheckOutcome.PASS,
          input.pairCount,
          t.minPairs,
          `${input.pairCount} pairs observed; ${t.minPairs} are needed.`,
        )
      : check(
          "min_pairs",
          CheckOutcome.SKIPPED,
          input.pairCount,
          t.minPairs,
          `Only ${input.pairCount} pairs observed; at least ${t.minPairs} are needed before a decision.`,
        ),
  );

  // Agreement: the lower bound of the interval, so that a few lucky pairs cannot promote.
  const agreementName = "agreement_lower_bound";
  if (!enough) {
    checks.push(skip(agreementName, input.agreementLowerBound, t.minAgreement, "Agreement"));
  } else if (input.comparedPairCount === 0) {
    checks.push(
      check(
        agreementName,
        CheckOutcome.WARN,
        0,
        t.minAgreement,
        "No pair could be compared: one side failed on every paired request.",
      ),
    );
  } else if (input.agreementLowerBound >= t.minAgreement) {
    checks.push(
      check(
        agreementName,
        CheckOutcome.PASS,
        input.agreementLowerBound,
        t.minAgreement,
        `Agreement ${pct(input.agreementRate)} on ${input.comparedPairCount} pairs; its 95 % lower bound ` +
          `${pct(input.agreementLowerBound)} is at least ${pct(t.minAgreement)}.`,
      ),
    );
  } else {
    checks.push(
      check(
        agreementName,
        CheckOutcome.WARN,
        input.agreementLowerBound,
        t.minAgreement,
        `Agreement ${pct(input.agreementRate)} on ${input.comparedPairCount} pairs; its 95 % lower bound ` +
          `${pct(input.agreementLowerBound)} is below ${pct(t.minAgreement)}.`,
      ),
    );
  }

  // Errors: gRPC-status aware, relative to the primary on the same traffic.
  const errorName = "shadow_error_rate";
  const errorLimit = input.primaryErrorRate + t.maxErrorRateIncrease;
  if (!enough) {
    checks.push(skip(errorName, input.shadowErrorRate, errorLimit, "Error rate"));
  } else if (input.shadowErrorRate <= errorLimit + 1e-12) {
    checks.push(
      check(
        errorName,
        CheckOutcome.PASS,
        input.shadowErrorRate,
        errorLimit,
        `Shadow error rate ${pct(input.shadowErrorRate)} is within ${pct(t.maxErrorRateIncrease)} of the ` +
          `primary's ${pct(input.primaryErrorRate)}.`,
      ),
    );
  } else {
    checks.push(
      check(
        errorName,
        CheckOutcome.FAIL,
        input.shadowErrorRate,
        errorLimit,
        `Shadow error rate ${pct(input.shadowErrorRate)} exceeds the primary's ${pct(input.primaryErrorRate)} ` +
          `by more than ${pct(t.maxErrorRateIncrease)}.`,
      ),
    );
  }

  // Latency: the p99 ratio, ignoring differences inside the slack (sub-millisecond noise).
  const latencyName = "latency_p99_ratio";
  const ratio =
    input.primaryLatencyP99Ms > 0 && input.shadowLatencyP99Ms > 0
      ? input.shadowLatencyP99Ms / input.primaryLatencyP99Ms
      : 0;
  if (!enough) {
    checks.push(skip(latencyName, ratio, t.maxLatencyP99Ratio, "Latency"));
  } else if (ratio === 0) {
    checks.push(
      check(
        latencyName,
        CheckOutcome.SKIPPED,
        0,
        t.maxLatencyP99Ratio,
        "Latency not judged: a role has no successful record to measure.",
      ),
    );
  } else if (
    ratio <= t.maxLatencyP99Ratio ||
    input.shadowLatencyP99Ms - input.primaryLatencyP99Ms <= t.latencySlackMs
  ) {
    checks.push(
      check(
        latencyName,
        CheckOutcome.PASS,
        ratio,
        t.maxLatencyP99Ratio,
        `Shadow p99 ${ms(input.shadowLatencyP99Ms)} is ${ratio.toFixed(2)}× the primary's ` +
          `${ms(input.primaryLatencyP99Ms)}` +
          (ratio > t.maxLatencyP99Ratio
            ? `, above ${t.maxLatencyP99Ratio}× but within the ${ms(t.latencySlackMs)} slack.`
            : `, within ${t.maxLatencyP99Ratio}×.`),
      ),
    );
  } else {
    checks.push(
      check(
        latencyName,
        CheckOutcome.WARN,
        ratio,
        t.maxLatencyP99Ratio,
        `Shadow p99 ${ms(input.shadowLatencyP99Ms)} is ${ratio.toFixed(2)}× the primary's ` +
          `${ms(input.primaryLatencyP99Ms)}, above ${t.maxLatencyP99Ratio}×.`,
      ),
    );
  }

  // Accuracy on user feedback: judged only once both roles have enough of it; never blocks promotion before.
  const accuracyName = "feedback_accuracy";
  const accuracyLimit = Math.max(0, input.primaryAccuracy - t.maxAccuracyDrop);
  const feedback = Math.min(input.primaryFeedbackCount, input.shadowFeedbackCount);
  if (!enough) {
    checks.push(skip(accuracyName, input.shadowAccuracy, accuracyLimit, "Accuracy"));
  } else if (feedback < t.minFeedback) {
    checks.push(
      check(
        accuracyName,
        CheckOutcome.SKIPPED,
        input.shadowAccuracy,
        accuracyLimit,
        `Accuracy not judged: ${feedback} feedback-labelled predictions per role, ${t.minFeedback} needed.`,
      ),
    );
  } else if (input.shadowAccuracy + 1e-12 >= accuracyLimit) {
    checks.push(
      check(
        accuracyName,
        CheckOutcome.PASS,
        input.shadowAccuracy,
        accuracyLimit,
        `Shadow accuracy ${pct(input.shadowAccuracy)} (${input.shadowFeedbackCount} labelled) is not worse than ` +
          `the primary's ${pct(input.primaryAccuracy)} (${input.primaryFeedbackCount}) beyond ${pct(t.maxAccuracyDrop)}.`,
      ),
    );
  } else {
    checks.push(
      check(
        accuracyName,
        CheckOutcome.FAIL,
        input.shadowAccuracy,
        accuracyLimit,
        `Shadow accuracy ${pct(input.shadowAccuracy)} (${input.shadowFeedbackCount} labelled) is worse than ` +
          `the primary's ${pct(input.primaryAccuracy)} (${input.primaryFeedbackCount}) by more than ` +
          `${pct(t.maxAccuracyDrop)}.`,
      ),
    );
  }
  return checks;
}

/**
 * The decision, from the checks: too few pairs → INSUFFICIENT_DATA; any FAIL → ROLLBACK; any WARN → HOLD; else
 * PROMOTE. The reasons are the messages of the checks that decided it (ROLLBACK: failures, then warnings; PROMOTE:
 * every check that passed, then those skipped).
 */
export function decide(input: VerdictInput, thresholds: VerdictThresholds): Verdict {
  const checks = evaluateChecks(input, thresholds);
  const messages = (outcome: CheckOutcome) =>
    checks.filter((c) => c.outcome === outcome).map((c) => c.message);
  let decision: Decision;
  let reasons: string[];
  if (input.pairCount < thresholds.minPairs) {
    decision = Decision.INSUFFICIENT_DATA;
    reasons = checks.filter((c) => c.name === "min_pairs").map((c) => c.message);
  } else if (checks.some((c) => c.outcome === CheckOutcome.FAIL)) {
    decision = Decision.ROLLBACK;
    reasons = [...messages(CheckOutcome.FAIL), ...messages(CheckOutcome.WARN)];
  } else if (checks.some((c) => c.outcome === CheckOutcome.WARN)) {
    decision = Decision.HOLD;
    reasons = messages(CheckOutcome.WARN);
  } else {
    decision = Decision.PROMOTE;
    reasons = [...messages(CheckOutcome.PASS), ...messages(CheckOutcome.SKIPPED)];
  }
  return create(VerdictSchema, { decision, reasons, checks });
}
