import { type ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { type RecordDetail, type ReportRow, type RoleNumber } from "./store.js";
import { type VerdictThresholds } from "./verdict.js";
/**
 * The report, computed from stored records at report time (README: "The join").
 *
 * - A **pair** is a PRIMARY and a SHADOW record with the same (request id, batch index) whose prediction times are
 *   at most the join window apart. A pair belongs to the report window by the primary's time.
 * - A record without such a partner is **pending** while it is younger than the join window (its partner may still
 *   arrive), and **unmatched** after that — counted by side. A record whose partner exists but is further away
 *   than the join window is unmatched at once.
 * - A pair whose input fingerprints differ is a **conflict** (the request id was reused for another text): never
 *   compared. A pair both models refused with the same caller-caused code is a **caller error**: nobody's fault.
 *   The other pairs are **judged**: every per-role comparison number (errors, latency, accuracy) and the verdict
 *   come from them, so both models are measured on the same requests.
 * - Only judged pairs where both calls succeeded are **compared** (agreement, flips, score delta, disagreements,
 *   latency, accuracy); a judged pair with a failed side counts its failure as an error of that role.
 * - Every record still counts in the totals (`all_*`), paired or not; unmatched primaries feed the coverage check.
 */
export interface ReportOptions {
    /** The end of the window (now). */
    nowMs: number;
    windowMs: number;
    /**
     * The start of the window when it is normalised (aligned down to the agreement series' step, so that reports
     * asked for at nearby moments share aggregates and caches); default `nowMs - windowMs`.
     */
    startMs?: number;
    joinWindowMs: number;
    maxDisagreements: number;
    /** Whether raw input text (stored only with the opt-in) is shown in disagreements. */
    includeText: boolean;
    /** The share of primary requests expected to be mirrored to the shadow (0–1). */
    expectedMirrorRatio: number;
    thresholds: VerdictThresholds;
}
/**
 * gRPC codes that describe the caller's request, not a model's fault: INVALID_ARGUMENT (empty or over-long text),
 * OUT_OF_RANGE, and RESOURCE_EXHAUSTED (a message over the size limit; a model-service under overload answers
 * UNAVAILABLE or DEADLINE_EXCEEDED instead). A pair is a caller error only when both models answered the same one of
 * these codes; a code on one side only is that model's error (it refused what the other accepted).
 */
export declare const CALLER_ERROR_CODES: ReadonlySet<number>;
/**
 * CANCELLED (1) on the primary's side is the caller giving up (a browser tab closed, a client's own timeout): the
 * mirrored copy is fire-and-forget and is not cancelled with it, so the pair has no primary answer to compare and
 * the cancellation is nobody's regression. It counts as a caller error whatever the shadow answered. (A shadow that
 * hangs shows up as DEADLINE_EXCEEDED, reported by model-service or by the mirroring caller, never as CANCELLED.)
 */
export declare const CALLER_CANCELLED = 1;
/** Upper bounds (ms) of the latency histogram in the report; a last +Inf bucket follows. */
export declare const LATENCY_BUCKETS_MS: number[];
/** The first records' query bound: partners of in-window records may lie up to one join window earlier. */
export declare function queryStartMs(options: Pick<ReportOptions, "nowMs" | "windowMs" | "joinWindowMs" | "startMs">): number;
/** The first instant of the report window. */
export declare function windowStartMs(options: Pick<ReportOptions, "nowMs" | "windowMs" | "startMs">): number;
/**
 * The normalised start of a window ending at `nowMs`: `nowMs - windowMs` aligned down to the agreement series'
 * step (at least a second), so the series covers the window exactly and reports asked for within one step share
 * their buckets.
 */
export declare function normalisedStartMs(nowMs: number, windowMs: number): number;
export declare function seriesStepMs(windowMs: number): number;
/** One role's share of a report, however it was counted (raw rows or aggregates). */
export interface RoleTally {
    /** Judged pairs: the comparison numbers. */
    records: number;
    errors: number;
    errorsByCode: Map<number, number>;
    /** Latency of compared pairs: percentiles and the counts of LATENCY_BUCKETS_MS (+Inf last). */
    latencyP50Ms: number;
    latencyP95Ms: number;
    latencyP99Ms: number;
    latencyCounts: number[];
    feedback: number;
    correct: number;
    /** Every record of the role in the window: the totals. */
    allRecords: number;
    allErrors: number;
    models: Map<string, {
        name: string;
        version: string;
        lastMs: number;
    }>;
}
/** A disagreement or a conflict shown in the report. */
export interface NotablePair {
    timeMs: number;
    requestId: string;
    batchIndex: number;
    primaryLabel: string;
    shadowLabel: string;
    feedbackLabel: string | null;
}
/** Everything a report says, counted; `finishReport` turns it into the message and the verdict. */
export interface ReportTally {
    requestCount: number;
    pairCount: number;
    judgedCount: number;
    compared: number;
    agreeing: number;
    settledPrimary: number;
    mirroredPrimary: number;
    firstPrimaryMs: number;
    lastPrimaryMs: number;
    lastShadowMs: number;
    pending: number;
    unmatched: Record<RoleNumber, number>;
    conflictCount: number;
    /** The newest conflicts, newest first, at most maxDisagreements. */
    conflicts: NotablePair[];
    callerErrors: Map<number, number>;
    flips: Map<string, {
        primaryLabel: string;
        shadowLabel: string;
        count: number;
    }>;
    delta: {
        mean: number;
        p50: number;
        p95: number;
        max: number;
    };
    /** The newest disagreements, newest first, at most maxDisagreements. */
    disagreements: NotablePair[];
    roles: Record<RoleNumber, RoleTally>;
    /** Compared and agreeing pairs by series bucket (start ms), oldest first, covering the window. */
    series: Map<number, {
        pairs: number;
        agreeing: number;
    }>;
}
export declare const emptyRoleTally: () => RoleTally;
/** The index in LATENCY_BUCKETS_MS (+Inf last) of a latency. */
export declare function latencyBucketIndex(latencyMs: number): number;
/** The empty series buckets of a window, oldest first. */
export declare function emptySeries(startMs: number, nowMs: number, windowMs: number): Map<number, {
    pairs: number;
    agreeing: number;
}>;
/** Keeps a model's newest time. */
export declare function noteModel(models: RoleTally["models"], name: string, version: string, lastMs: number): void;
/** Two fingerprints of different inputs; an empty one (a reporter that sent none) is not evidence of a conflict. */
export declare const differentInputs: (a: Pick<ReportRow, "inputSha256">, b: Pick<ReportRow, "inputSha256">) => boolean;
/** Both calls refused with the same caller-caused code, or the caller cancelled the primary call. */
export declare const callerError: (primary: Pick<ReportRow, "grpcCode">, shadow: Pick<ReportRow, "grpcCode">) => boolean;
export interface RequestRecords {
    primary?: ReportRow;
    shadow?: ReportRow;
}
/** Reads the probabilities and inputs of a request's records (for the disagreements shown). */
export type DetailLookup = (requestId: string, batchIndex: number) => Partial<Record<RoleNumber, RecordDetail>>;
/**
 * Computes the report from the records whose prediction time is at or after `queryStartMs(options)`: the
 * straightforward reference, every row in the window read and joined (the service reports from aggregates,
 * `aggregates.ts`, and a test holds the two equal).
 */
export declare function buildReport(records: readonly ReportRow[], options: ReportOptions, details: DetailLookup): ShadowReport;
/** Counts a report from raw rows (see buildReport). */
export declare function tallyRows(records: readonly ReportRow[], options: ReportOptions): ReportTally;
/** The report message and its verdict, from a tally. */
export declare function finishReport(t: ReportTally, options: ReportOptions, details: DetailLookup): ShadowReport;
