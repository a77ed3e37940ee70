import { type ReportOptions, type ReportTally, type RequestRecords } from "./report.js";
import type { RoleNumber } from "./store.js";
/**
 * The report's numbers, maintained at ingest in time buckets (README: "At scale"), so that a report sums a few
 * hundred buckets instead of reading every record of its window.
 *
 * Every request (join key: request id and batch index) contributes to the buckets through one function of its
 * records and feedback, `contribute` — the same classification as the reference report (report.ts: a pair, a
 * conflict, a caller error, judged, compared; a lone or too-far record). When a request changes (its partner
 * arrives, a MIRROR record replaces the shadow's own, feedback arrives or changes, retention removes one side) its
 * old contribution is subtracted and the new one added, so the buckets always equal what the reference would count
 * from the stored rows. A pair lives in the bucket of its primary's time, a lone record in that of its own time.
 *
 * Two resolutions: 1 s buckets for the last LEVEL0_HORIZON_MS (windows up to 30 min, whose series steps are
 * 1–30 s) and 1 min buckets for the whole retention (longer windows: steps of 1 min and more). Report windows start
 * on a step boundary (normalised), so a window is a whole number of buckets. What is approximate: latency and score
 * delta percentiles come from log-spaced (latency, ≤ 0.5 % off) and 0.0001-wide (delta) histograms; every count,
 * rate and the verdict's inputs other than the p99 latencies are exact.
 */
/** Widths of the two bucket levels. */
export declare const LEVEL_WIDTHS_MS: readonly [1000, 60000];
/** How long 1 s buckets are kept (beyond the longest window they serve, 30 min, and the join window). */
export declare const LEVEL0_HORIZON_MS: number;
/** The latency histogram's bin of a value: log-spaced, 1 % wide. */
export declare const latencyBin: (ms: number) => number;
/** The value a latency bin stands for: its geometric middle (within 0.5 % of every value in it). */
export declare const latencyBinValue: (bin: number) => number;
/** Score deltas (0–1) are kept to 0.0001. */
export declare const deltaBin: (delta: number) => number;
export declare const deltaBinValue: (bin: number) => number;
interface RoleCells {
    all: number;
    allErrors: number;
    judged: number;
    errors: Map<number, number>;
    /** Records without a partner (pending or unmatched, depending on their age at report time). */
    lone: number;
    /** Records whose partner is further than the join window: unmatched at once. */
    tooFar: number;
    latencyCounts: number[];
    latency: Map<number, number>;
    feedback: number;
    correct: number;
    models: Map<string, {
        name: string;
        version: string;
        n: number;
        lastMs: number;
    }>;
}
export declare class Bucket {
    readonly startMs: number;
    readonly widthMs: number;
    requests: number;
    pairs: number;
    judged: number;
    compared: number;
    agreeing: number;
    conflicts: number;
    callerErrors: Map<number, number>;
    roles: Record<RoleNumber, RoleCells>;
    flips: Map<string, number>;
    deltaSum: number;
    deltas: Map<number, number>;
    firstPrimaryMs: number;
    lastPrimaryMs: number;
    /** The shadow's own (not MIRROR) records, and the newest one's time. */
    shadowOwn: number;
    lastShadowMs: number;
    /** 1 s buckets only, while young: lone records by exact time, for splitting pending from unmatched. */
    loneTimes: Map<number, [number, number]> | undefined;
    loneTimesDropped: boolean;
    constructor(startMs: number, widthMs: number, fine: boolean);
    toJSON(): unknown;
    static fromJSON(startMs: number, widthMs: number, json: string): Bucket;
}
/** What a request shows in the report's lists: a disagreement (1) or a conflict (2), at its primary's time. */
export interface Notable {
    kind: 1 | 2;
    timeMs: number;
}
/** Whether a request is a pair (both records within the join window). */
export declare const isPair: (s: RequestRecords, joinWindowMs: number) => s is Required<RequestRecords>;
export declare function notableOf(s: RequestRecords, joinWindowMs: number): Notable | undefined;
/** A level of buckets of one width. */
declare class Level {
    readonly widthMs: number;
    readonly fine: boolean;
    readonly buckets: Map<number, Bucket>;
    constructor(widthMs: number, fine: boolean);
    keyOf(timeMs: number): number;
}
export declare class Aggregates {
    #private;
    readonly joinWindowMs: number;
    /** The newest own shadow record in [fromMs, toMs), for correcting a bucket after a MIRROR replacement. */
    private readonly newestShadowOwn;
    readonly levels: Level[];
    /** Nothing before this is counted any more (the retention's cut). */
    floorMs: number;
    constructor(joinWindowMs: number, 
    /** The newest own shadow record in [fromMs, toMs), for correcting a bucket after a MIRROR replacement. */
    newestShadowOwn: (fromMs: number, toMs: number) => number | undefined);
    /** Adds (sign 1) or removes (sign −1) what a request's records and feedback count. */
    contribute(s: RequestRecords, sign: 1 | -1): void;
    /** A stored primary record (by its own time, paired or not): the coverage's first and last primary times. */
    primaryStored(timeMs: number): void;
    /** The shadow's own record stored (1) or replaced by a MIRROR record (−1): the silence check's last time. */
    shadowOwnStored(timeMs: number, sign: 1 | -1): void;
    get hasTouched(): boolean;
    /** The buckets changed since the last call: [level, start, bucket or undefined when dropped]. */
    takeTouched(): [number, number, Bucket | undefined][];
    /** Loads a persisted bucket. */
    load(level: number, startMs: number, json: string): void;
    /**
     * Forgets what no report will read again as of `nowMs`: 1 s buckets older than their horizon, and the exact lone
     * times of buckets older than the join window. Returns the dropped buckets' [level, start].
     */
    prune(nowMs: number): [number, number][];
    /** Drops every bucket before `cutMs` (a multiple of the widest bucket) and counts nothing before it again. */
    cut(cutMs: number): [number, number][];
    /**
     * The report's counts for a window (its start normalised: a multiple of the series step), without the lists of
     * disagreements and conflicts (the store reads those).
     */
    tally(options: ReportOptions): Omit<ReportTally, "disagreements" | "conflicts">;
}
/** Nearest-rank quantiles of a histogram (bin → count), each the value its bin stands for; 0 when empty. */
export declare function histogramQuantiles(histogram: Map<number, number>, binValue: (bin: number) => number, qs: readonly number[]): number[];
export {};
