import { toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { verifyFeedbackToken } from "@shadowmesh/common";
import { RecordSource, Role, ShadowReportSchema, } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { normalisedStartMs, seriesStepMs } from "./report.js";
import { createAggregateEngine } from "./report-engine.js";
/** Request ids: 1–128 printable ASCII characters without spaces (what the edge creates and model-services keep). */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** The largest batch index: model-service's largest PredictBatch (MODEL_SERVICE_PREDICT_BATCH_MAX_TEXTS ≤ 100 000). */
export const MAX_BATCH_INDEX = 99_999;
/** A report is reused for this long (ms) while the store has not changed: watchers and scrapes share it. */
const REPORT_REUSE_MS = 1000;
/** A watch waits at least this many times the last report's computing time between updates (≤ 20 % busy). */
const PACE_FACTOR = 4;
const MAX_CACHED_REPORTS = 16;
const MAX_LABEL_LENGTH = 256;
const MAX_LABELS = 1000;
/** A Duration in (fractional) milliseconds; undefined when unset. */
export function durationToMs(duration) {
    if (!duration) {
        return undefined;
    }
    return Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}
function timeOf(time, fallbackMs) {
    if (!time) {
        return fallbackMs;
    }
    const ms = Math.round(timestampMs(time));
    return ms > 0 ? ms : fallbackMs;
}
function invalid(message) {
    return new ConnectError(message, Code.InvalidArgument);
}
/** Why a request id or batch index is unusable, or undefined. */
function idProblem(requestId, batchIndex) {
    if (!REQUEST_ID_PATTERN.test(requestId)) {
        return `request_id must be 1 to 128 printable ASCII characters without spaces (got ${requestId.length} characters${requestId.length > 0 && requestId.length <= 128 ? " with a space, control or non-ASCII character" : ""})`;
    }
    if (batchIndex > MAX_BATCH_INDEX) {
        return `batch_index must be at most ${MAX_BATCH_INDEX} (got ${batchIndex})`;
    }
    return undefined;
}
const SOURCES = {
    [RecordSource.UNSPECIFIED]: 0,
    [RecordSource.MODEL_SERVICE]: 1,
    [RecordSource.MIRROR]: 2,
};
/** Resolves on the next store change, after `timeoutMs`, or on abort — whichever comes first. */
class ChangeWaiter {
    #changed = false;
    #wake;
    #unsubscribe;
    constructor(store) {
        this.#unsubscribe = store.onChange(() => {
            this.#changed = true;
            this.#wake?.();
        });
    }
    async wait(timeoutMs, signal) {
        if (!this.#changed && !signal.aborted) {
            await new Promise((resolve) => {
                const done = () => {
                    clearTimeout(timer);
                    signal.removeEventListener("abort", done);
                    this.#wake = undefined;
                    resolve();
                };
                const timer = setTimeout(done, timeoutMs);
                signal.addEventListener("abort", done, { once: true });
                this.#wake = done;
            });
        }
        this.#changed = false;
    }
    close() {
        this.#unsubscribe();
    }
}
function abortableSleep(ms, signal) {
    if (ms <= 0 || signal.aborted) {
        return Promise.resolve();
    }
    return new Promise((resolve) => {
        const done = () => {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done, { once: true });
    });
}
/** The report without its timestamps, to tell whether anything a reader sees has changed. */
function contentOf(report) {
    const bytes = toBinary(ShadowReportSchema, {
        ...report,
        startTime: undefined,
        endTime: undefined,
        generateTime: undefined,
    });
    return Buffer.from(bytes).toString("base64");
}
/** MetricsService: ingest, feedback, the report and its live stream, all on one ShadowStore. */
export class ShadowMetricsService {
    #store;
    #options;
    #observer;
    #shutdownSignal;
    #now;
    #engine;
    #cache = new Map();
    /** The labels of each model (name@version) seen, and when it was last seen: for feedback on unknown requests. */
    #modelLabels = new Map();
    #lastDurationMs = 0;
    constructor(deps) {
        this.#store = deps.store;
        this.#engine = deps.engine ?? createAggregateEngine(deps.store);
        deps.store.useJoinWindow(deps.options.joinWindowMs);
        this.#options = deps.options;
        this.#observer = deps.observer;
        this.#shutdownSignal = deps.shutdownSignal;
        this.#now = deps.now ?? Date.now;
        for (const { model, labels, lastMs } of this.#store.recentModelLabels()) {
            this.#modelLabels.set(model, { labels, lastMs });
        }
    }
    #learnLabels(record) {
        if (record.grpcCode !== 0 || record.probabilities.length === 0) {
            return;
        }
        const key = `${record.modelName}@${record.modelVersion}`;
        const known = this.#modelLabels.get(key);
        if (!known) {
            this.#modelLabels.set(key, {
                labels: new Set(record.probabilities.map(([label]) => label)),
                lastMs: record.timeMs,
            });
            return;
        }
        known.lastMs = Math.max(known.lastMs, record.timeMs);
        for (const [label] of record.probabilities) {
            known.labels.add(label);
        }
    }
    /** The labels feedback about this request may name: its records' labels, else those of models seen recently. */
    #labelsFor(requestId) {
        const own = this.#store.requestLabels(requestId);
        if (own.size > 0) {
            return own;
        }
        const since = this.#now() - this.#options.retentionMs;
        const labels = new Set();
        for (const { labels: modelLabels, lastMs } of this.#modelLabels.values()) {
            if (lastMs >= since) {
                for (const label of modelLabels) {
                    labels.add(label);
                }
            }
        }
        return labels;
    }
    reportPredictions(request) {
        const { maxRecordsPerBatch, storeRawText } = this.#options;
        if (request.records.length > maxRecordsPerBatch) {
            throw invalid(`a batch holds at most ${maxRecordsPerBatch} records, got ${request.records.length}`);
        }
        const receivedMs = this.#now();
        const records = request.records.map((record, i) => {
            const problem = idProblem(record.requestId, record.batchIndex);
            if (problem) {
                throw invalid(`record ${i}: ${problem}`);
            }
            if (record.role !== Role.PRIMARY && record.role !== Role.SHADOW) {
                throw invalid(`record ${i} (${record.requestId}): role must be ROLE_PRIMARY or ROLE_SHADOW`);
            }
            const source = SOURCES[record.source];
            if (source === undefined) {
                throw invalid(`record ${i} (${record.requestId}): unknown source ${record.source}`);
            }
            if (source === 2 && (record.role !== Role.SHADOW || record.grpcStatusCode === 0)) {
                throw invalid(`record ${i} (${record.requestId}): a RECORD_SOURCE_MIRROR record must be a SHADOW record of a failed call`);
            }
            if (record.label.length > MAX_LABEL_LENGTH || record.probabilities.length > MAX_LABELS) {
                throw invalid(`record ${i} (${record.requestId}): label or probabilities too large`);
            }
            const latencyMs = durationToMs(record.latency) ?? 0;
            return {
                requestId: record.requestId,
                batchIndex: record.batchIndex,
                role: record.role === Role.PRIMARY ? 1 : 2,
                modelName: record.modelName,
                modelVersion: record.modelVersion,
                label: record.label,
                probabilities: record.probabilities.map((p) => [p.label, p.probability]),
                latencyMs: Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs : 0,
                grpcCode: record.grpcStatusCode,
                timeMs: timeOf(record.time, receivedMs),
                receivedMs,
                inputSha256: record.input?.sha256 ?? "",
                inputLength: record.input?.length ?? 0,
                inputText: storeRawText && record.input?.text ? record.input.text : null,
                instance: record.instance,
                source,
            };
        });
        const result = this.#store.insertRecords(records);
        for (const record of records) {
            this.#learnLabels(record);
        }
        if (this.#observer) {
            for (const role of [1, 2]) {
                const sent = records.filter((r) => r.role === role).length;
                if (sent > 0) {
                    this.#observer.ingested(role, result.acceptedByRole[role], sent - result.acceptedByRole[role], role === 2 ? result.replaced : 0);
                }
            }
        }
        return { acceptedCount: result.accepted, duplicateCount: result.duplicates };
    }
    submitFeedback(request) {
        try {
            return this.#submitFeedback(request);
        }
        catch (error) {
            this.#observer?.feedbackRefused?.(ConnectError.from(error).code);
            throw error;
        }
    }
    /**
     * Feedback is evidence, so it needs proof (README: "Feedback needs proof"): the checks run in this order, so that a
     * caller without a token learns nothing about the labels or the requests.
     */
    #submitFeedback(request) {
        const secret = this.#options.feedbackSecret;
        if (secret === "") {
            throw new ConnectError("feedback is disabled: metrics-service has no METRICS_SERVICE_FEEDBACK_SECRET", Code.FailedPrecondition);
        }
        const problem = idProblem(request.requestId, request.batchIndex);
        if (problem) {
            throw invalid(problem);
        }
        if (!verifyFeedbackToken(secret, request.requestId, request.batchIndex, request.feedbackToken)) {
            throw new ConnectError(request.feedbackToken === ""
                ? "feedback needs the feedback_token that came with the prediction"
                : "the feedback_token does not belong to this request id and batch index", Code.PermissionDenied);
        }
        if (request.label === "" || request.label.length > MAX_LABEL_LENGTH) {
            throw invalid(`label must be 1 to ${MAX_LABEL_LENGTH} characters`);
        }
        const labels = this.#labelsFor(request.requestId);
        if (labels.size === 0) {
            throw new ConnectError("no model's labels are known yet (no prediction was reported), so the label cannot be checked; retry shortly", Code.Unavailable);
        }
        if (!labels.has(request.label)) {
            throw invalid(`label ${JSON.stringify(request.label.slice(0, 64))} is not one of the model's labels (${[...labels].sort().join(", ")})`);
        }
        const requestKnown = this.#store.upsertFeedback(request.requestId, request.batchIndex, request.label, this.#now());
        this.#observer?.feedback(requestKnown);
        return { requestKnown };
    }
    async getShadowReport(request, context) {
        const report = await this.report(this.#windowOf(request.window), request.maxDisagreements, {
            ...(context ? { signal: context.signal } : {}),
        });
        return { report };
    }
    async *watchShadowReport(request, context) {
        const windowMs = this.#windowOf(request.window);
        const asked = durationToMs(request.minInterval);
        if (asked !== undefined && asked < 0) {
            throw invalid("min_interval must not be negative");
        }
        const intervalMs = Math.max(this.#options.watchMinIntervalMs, asked || this.#options.watchIntervalMs);
        const signal = this.#shutdownSignal
            ? AbortSignal.any([context.signal, this.#shutdownSignal])
            : context.signal;
        const waiter = new ChangeWaiter(this.#store);
        try {
            let lastContent;
            let lastSentMs = Number.NEGATIVE_INFINITY;
            while (!signal.aborted) {
                let report;
                try {
                    report = await this.report(windowMs, request.maxDisagreements, { signal });
                }
                catch (error) {
                    if (signal.aborted) {
                        break;
                    }
                    throw error;
                }
                const content = contentOf(report);
                if (content !== lastContent) {
                    lastContent = content;
                    lastSentMs = performance.now();
                    yield { report };
                }
                await waiter.wait(this.#options.watchRefreshMs, signal);
                // Large windows make reports expensive: pace updates so that computing them never starves ingest.
                const paceMs = Math.max(intervalMs, PACE_FACTOR * this.#lastDurationMs);
                await abortableSleep(lastSentMs + paceMs - performance.now(), signal);
            }
        }
        finally {
            waiter.close();
        }
        // The handler's signal also aborts on shutdown; a client that went away never sees what is thrown here.
        if (this.#shutdownSignal?.aborted) {
            throw new ConnectError("metrics-service is shutting down; reconnect", Code.Unavailable);
        }
    }
    /** Counts a caller waiting for a report; when every caller has gone, its queued computation is dropped. */
    #wait(entry, signal) {
        if (!signal) {
            // A caller without a signal (the gauges) keeps the computation whatever the others do.
            entry.waiters = Number.POSITIVE_INFINITY;
            return;
        }
        entry.waiters++;
        signal.addEventListener("abort", () => {
            entry.waiters--;
            if (entry.waiters <= 0) {
                entry.gone.abort();
            }
        }, { once: true });
    }
    /** How long the last report took to compute, in ms. */
    get lastReportDurationMs() {
        return this.#lastDurationMs;
    }
    /**
     * The report for the window ending now, its start normalised (aligned down to the series step) so that nearby
     * windows share buckets. A report computed (or being computed) less than a second ago for the same start, step and
     * list length is reused while nothing was written since, so that many watchers and a scrape cost one computation.
     * `signal`: the caller's; queued work is dropped once every caller waiting for it has gone. `priority`: computed
     * at once, ahead of queued reports (the Prometheus gauges).
     */
    report(windowMs, maxDisagreements = 0, how = {}) {
        const nowMs = this.#now();
        const limit = Math.min(maxDisagreements || this.#options.defaultMaxDisagreements, this.#options.maxDisagreementsLimit);
        const startMs = normalisedStartMs(nowMs, windowMs);
        const key = `${startMs}/${seriesStepMs(windowMs)}/${limit}`;
        const version = this.#store.version;
        const cached = this.#cache.get(key);
        if (cached &&
            cached.version === version &&
            nowMs >= cached.atMs &&
            nowMs - cached.atMs < REPORT_REUSE_MS &&
            !cached.gone.signal.aborted) {
            this.#wait(cached, how.signal);
            return cached.report;
        }
        const started = performance.now();
        const sample = this.#options.reportSampleRatio ?? 1;
        const thresholds = sample > 0 && sample < 1
            ? {
                ...this.#options.thresholds,
                maxShadowSilenceMs: this.#options.thresholds.maxShadowSilenceMs / sample,
            }
            : this.#options.thresholds;
        const gone = new AbortController();
        const report = this.#engine.compute({
            nowMs,
            windowMs,
            startMs,
            joinWindowMs: this.#options.joinWindowMs,
            maxDisagreements: limit,
            includeText: this.#options.storeRawText,
            expectedMirrorRatio: this.#options.expectedMirrorRatio,
            thresholds,
        }, { signal: gone.signal, ...(how.priority ? { priority: true } : {}) });
        const entry = { version, atMs: nowMs, report, waiters: 0, gone };
        this.#wait(entry, how.signal);
        this.#cache.delete(key);
        this.#cache.set(key, entry);
        for (const oldest of this.#cache.keys()) {
            if (this.#cache.size <= MAX_CACHED_REPORTS) {
                break;
            }
            this.#cache.delete(oldest);
        }
        report.then(() => {
            this.#lastDurationMs = performance.now() - started;
        }, () => {
            // A failed computation is not reused; the caller sees the error.
            if (this.#cache.get(key) === entry) {
                this.#cache.delete(key);
            }
        });
        return report;
    }
    #windowOf(window) {
        const ms = durationToMs(window);
        if (ms === undefined || ms === 0) {
            return this.#options.defaultWindowMs;
        }
        if (!(ms > 0)) {
            throw invalid("window must be positive");
        }
        return Math.min(ms, this.#options.maxWindowMs);
    }
}
//# sourceMappingURL=metrics-service.js.map