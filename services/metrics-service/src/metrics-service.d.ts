import { type MessageInitShape } from "@bufbuild/protobuf";
import { type Duration } from "@bufbuild/protobuf/wkt";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type GetShadowReportRequest, type GetShadowReportResponseSchema, type MetricsService, type ReportPredictionsRequest, type ReportPredictionsResponseSchema, type ShadowReport, type SubmitFeedbackRequest, type SubmitFeedbackResponseSchema, type WatchShadowReportRequest, type WatchShadowReportResponseSchema } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { type ReportEngine } from "./report-engine.js";
import type { RoleNumber, ShadowStore } from "./store.js";
import type { VerdictThresholds } from "./verdict.js";
/** How the service behaves; main.ts fills it from the configuration. */
export interface ShadowServiceOptions {
    joinWindowMs: number;
    /** Report window when a request leaves it unset. */
    defaultWindowMs: number;
    /** The longest window a request may ask for (the retention); longer ones are cut to it. */
    maxWindowMs: number;
    /** Disagreements per report when a request asks for 0. */
    defaultMaxDisagreements: number;
    /** The cap on disagreements per report. */
    maxDisagreementsLimit: number;
    /** Keep (and show) the raw input text that model-services send; off: it is dropped on arrival. */
    storeRawText: boolean;
    maxRecordsPerBatch: number;
    /** WatchShadowReport: the pace when the client leaves min_interval unset, and the floor of what it may ask. */
    watchIntervalMs: number;
    watchMinIntervalMs: number;
    /** WatchShadowReport: without new data, how often the report is recomputed (pending records age, windows slide). */
    watchRefreshMs: number;
    thresholds: VerdictThresholds;
    /** The share of primary requests expected to be mirrored to the shadow (0–1): the base of the coverage check. */
    expectedMirrorRatio: number;
    /** Verifies feedback tokens; empty: feedback is disabled (FAILED_PRECONDITION). */
    feedbackSecret: string;
    /** How long records are kept: models not seen for this long no longer vouch for a label. */
    retentionMs: number;
    /**
     * The share of requests model-services and app-service report (their REPORT_SAMPLE_PERCENT / 100; default 1).
     * Sampling keeps pairs whole, so coverage needs no correction, but records arrive that much less often: the
     * shadow-silence allowance is divided by it.
     */
    reportSampleRatio?: number;
}
/** Hooks for the service's own Prometheus counters. */
export interface ShadowServiceObserver {
    /** `replaced` of the accepted replaced the shadow's own record (a MIRROR record). */
    ingested(role: RoleNumber, accepted: number, duplicates: number, replaced?: number): void;
    feedback(requestKnown: boolean): void;
    /** A SubmitFeedback call refused, with its gRPC code. */
    feedbackRefused?(code: Code): void;
}
export interface ShadowServiceDeps {
    store: ShadowStore;
    /** Where reports are computed; default: from `store`'s aggregates, on this thread, through a bounded queue. */
    engine?: ReportEngine;
    options: ShadowServiceOptions;
    observer?: ShadowServiceObserver;
    /** Aborted when the server shuts down: live report streams end with UNAVAILABLE so that clients reconnect. */
    shutdownSignal?: AbortSignal;
    /** The clock (ms since the epoch); tests inject one. */
    now?: () => number;
}
/** Request ids: 1–128 printable ASCII characters without spaces (what the edge creates and model-services keep). */
export declare const REQUEST_ID_PATTERN: RegExp;
/** The largest batch index: model-service's largest PredictBatch (MODEL_SERVICE_PREDICT_BATCH_MAX_TEXTS ≤ 100 000). */
export declare const MAX_BATCH_INDEX = 99999;
/** A Duration in (fractional) milliseconds; undefined when unset. */
export declare function durationToMs(duration: Duration | undefined): number | undefined;
/** MetricsService: ingest, feedback, the report and its live stream, all on one ShadowStore. */
export declare class ShadowMetricsService implements ServiceImpl<typeof MetricsService> {
    #private;
    constructor(deps: ShadowServiceDeps);
    reportPredictions(request: ReportPredictionsRequest): MessageInitShape<typeof ReportPredictionsResponseSchema>;
    submitFeedback(request: SubmitFeedbackRequest): MessageInitShape<typeof SubmitFeedbackResponseSchema>;
    getShadowReport(request: GetShadowReportRequest, context?: HandlerContext): Promise<MessageInitShape<typeof GetShadowReportResponseSchema>>;
    watchShadowReport(request: WatchShadowReportRequest, context: HandlerContext): AsyncIterable<MessageInitShape<typeof WatchShadowReportResponseSchema>>;
    /** How long the last report took to compute, in ms. */
    get lastReportDurationMs(): number;
    /**
     * The report for the window ending now, its start normalised (aligned down to the series step) so that nearby
     * windows share buckets. A report computed (or being computed) less than a second ago for the same start, step and
     * list length is reused while nothing was written since, so that many watchers and a scrape cost one computation.
     * `signal`: the caller's; queued work is dropped once every caller waiting for it has gone. `priority`: computed
     * at once, ahead of queued reports (the Prometheus gauges).
     */
    report(windowMs: number, maxDisagreements?: number, how?: {
        signal?: AbortSignal;
        priority?: boolean;
    }): Promise<ShadowReport>;
}
