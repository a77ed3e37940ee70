import { type Verdict, type VerdictCheck } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
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
    /** PROMOTE needs the coverage (shadow records present ÷ expected) at least this; below: HOLD. */
    minCoverage: number;
    /**
     * PROMOTE needs the shadow's silence (how long primary records kept arriving after its newest record) at most
     * this, divided by the expected mirror share (a sampled shadow is legitimately quiet for longer); above: HOLD.
     */
    maxShadowSilenceMs: number;
}
/** What the verdict looks at, taken from the report. */
export interface VerdictInput {
    /** Judged pairs: both records present, same input, not both refused for the caller's fault. */
    pairCount: number;
    /** Every pair, judged or not (conflicts and caller-error pairs included). */
    allPairCount: number;
    conflictCount: number;
    callerErrorPairCount: number;
    /** The configured share of primary requests mirrored to the shadow (0–1). */
    expectedMirrorRatio: number;
    /** Primary records past the join window (paired or unmatched), and how many of them have a shadow record. */
    settledPrimaryCount: number;
    mirroredPrimaryCount: number;
    /** mirrored ÷ (settled × expected); 0 when nothing is settled. */
    coverage: number;
    /** How long primary records kept arriving after the shadow's newest own record (ms). */
    shadowSilenceMs: number;
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
/** The checks, in the order they are listed. Every check is evaluated, whatever the others say. */
export declare function evaluateChecks(input: VerdictInput, t: VerdictThresholds): VerdictCheck[];
/**
 * The decision, from the checks: too few pairs → INSUFFICIENT_DATA; any FAIL → ROLLBACK; any WARN → HOLD; else
 * PROMOTE. The reasons are the messages of the checks that decided it (ROLLBACK: failures, then warnings; PROMOTE:
 * every check that passed, then those skipped).
 */
export declare function decide(input: VerdictInput, thresholds: VerdictThresholds): Verdict;
