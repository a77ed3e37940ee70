import { type ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { type ReportOptions } from "./report.js";
import type { ReportSource, ShadowStore } from "./store.js";
/** Computes a report from one consistent snapshot of a store. */
export declare function computeReport(source: ReportSource, options: ReportOptions): ShadowReport;
/** How a report is asked for. */
export interface ComputeOptions {
    /** Aborted when nobody waits for the report any more: queued work is then dropped. */
    signal?: AbortSignal;
    /** Computed at once, ahead of the queue (the Prometheus gauges: a scrape never waits behind reports). */
    priority?: boolean;
}
/** Where reports are computed. */
export interface ReportEngine {
    compute(options: ReportOptions, how?: ComputeOptions): Promise<ShadowReport>;
    close(): Promise<void>;
}
/** Reports queued at most in the aggregate engine; more are refused (RESOURCE_EXHAUSTED) until it drains. */
export declare const MAX_QUEUED_REPORTS = 32;
/**
 * Computes reports from the store's aggregates (`ShadowStore.aggregateReport`), on the store's thread: a report
 * costs about a millisecond per hundred buckets whatever the number of pairs, so it needs no worker. Requests wait
 * in a bounded queue and run one per event-loop turn, so a storm of reports interleaves with ingest instead of
 * starving it; a request whose caller has gone (its signal aborted) leaves the queue at once; a full queue refuses
 * with RESOURCE_EXHAUSTED. `priority` requests (the gauges) are computed at once.
 */
export declare function createAggregateEngine(store: ShadowStore, maxQueued?: number): ReportEngine;
/** Computes reports on the calling thread (tests of the service class, tools). */
export declare function createInlineEngine(source: ReportSource): ReportEngine;
/**
 * Computes reports on a worker thread with its own read-only connection to the store (WAL: readers never block the
 * writer). A report over a large window takes a while; on the main thread it would hold up ingest and feedback,
 * which must answer quickly (model-services drop records when the collector is slow). Requests are answered in
 * order; a worker that dies is replaced on the next request, and the requests it held fail.
 */
export declare function createWorkerEngine(file: string): ReportEngine;
