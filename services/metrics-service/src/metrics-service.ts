import { type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { type Duration, type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type Logger, verifyFeedbackToken } from "@shadowmesh/common";
import {
  type GetShadowReportRequest,
  type GetShadowReportResponseSchema,
  type ListCandidatesRequest,
  type ListCandidatesResponseSchema,
  type MetricsService,
  RecordSource,
  type ReportPredictionsRequest,
  type ReportPredictionsResponseSchema,
  Role,
  type ShadowReport,
  ShadowReportSchema,
  type SubmitFeedbackRequest,
  type SubmitFeedbackResponseSchema,
  type WatchShadowReportRequest,
  type WatchShadowReportResponseSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { candidateProblem } from "./candidates.js";
import { DEFAULT_MAX_CANDIDATES } from "./config.js";
import { normalisedStartMs, seriesStepMs } from "./report.js";
import { createAggregateEngine, type ReportEngine } from "./report-engine.js";
import {
  type ShadowStore,
  type SourceNumber,
  STORED_ROLES,
  type StoredRecord,
  type StoredRole,
} from "./store.js";
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
  /**
   * The most candidates stored at once (METRICS_SERVICE_MAX_CANDIDATES; default DEFAULT_MAX_CANDIDATES): SHADOW
   * records of a new candidate beyond it are refused, counted and logged.
   */
  maxCandidates?: number;
  /** WatchShadowReport: the pace when the client leaves min_interval unset, and the floor of what it may ask. */
  watchIntervalMs: number;
  watchMinIntervalMs: number;
  /** WatchShadowReport: without new data, how often the report is recomputed (pending records age, windows slide). */
  watchRefreshMs: number;
  thresholds: VerdictThresholds;
  /** The share of primary requests expected to be mirrored to the shadow (0–1): the base of the coverage check. */
  expectedMirrorRatio: number;
  /**
   * The expected share of the candidates that differ from `expectedMirrorRatio` (0–1), by candidate name
   * (METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS).
   */
  expectedMirrorRatios?: ReadonlyMap<string, number>;
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
  ingested(role: StoredRole, accepted: number, duplicates: number, replaced?: number): void;
  feedback(requestKnown: boolean): void;
  /** A SubmitFeedback call refused, with its gRPC code. */
  feedbackRefused?(code: Code): void;
  /** Records not stored (and not acknowledged), by why: `too_many_candidates` (the cap on candidates). */
  refused?(reason: RefusalReason, records: number): void;
}

/** Why records are refused one by one while the rest of their batch is stored. */
export type RefusalReason = "too_many_candidates";

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
  /** Where refused candidates are warned about (at most once per name per minute); none: not logged. */
  logger?: Logger;
}

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
/** A refused candidate is warned about at most once in this long (ms). */
const REFUSAL_WARN_MS = 60_000;
/** The most refused names remembered as warned (a storm of names beyond it is summed up as "more"). */
const MAX_WARNED_NAMES = 1024;
/** The most refused names one warning lists, and the characters shown of each. */
const WARN_NAMES_SHOWN = 10;
const WARN_NAME_CHARS = 64;

/** A Duration in (fractional) milliseconds; undefined when unset. */
export function durationToMs(duration: Duration | undefined): number | undefined {
  if (!duration) {
    return undefined;
  }
  return Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}

function timeOf(time: Timestamp | undefined, fallbackMs: number): number {
  if (!time) {
    return fallbackMs;
  }
  const ms = Math.round(timestampMs(time));
  return ms > 0 ? ms : fallbackMs;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** Why a request id or batch index is unusable, or undefined. */
function idProblem(requestId: string, batchIndex: number): string | undefined {
  if (!REQUEST_ID_PATTERN.test(requestId)) {
    return `request_id must be 1 to 128 printable ASCII characters without spaces (got ${requestId.length} characters${
      requestId.length > 0 && requestId.length <= 128 ? " with a space, control or non-ASCII character" : ""
    })`;
  }
  if (batchIndex > MAX_BATCH_INDEX) {
    return `batch_index must be at most ${MAX_BATCH_INDEX} (got ${batchIndex})`;
  }
  return undefined;
}

/** A request's candidate selector: a name, or none (the only candidate) when empty; INVALID_ARGUMENT when malformed. */
function selectorOf(candidate: string): { candidate?: string } {
  const problem = candidateProblem(candidate);
  if (problem) {
    throw invalid(`candidate ${problem}`);
  }
  return candidate === "" ? {} : { candidate };
}

const SOURCES: Record<number, SourceNumber> = {
  [RecordSource.UNSPECIFIED]: 0,
  [RecordSource.MODEL_SERVICE]: 1,
  [RecordSource.MIRROR]: 2,
};

/** Resolves on the next store change, after `timeoutMs`, or on abort — whichever comes first. */
class ChangeWaiter {
  #changed = false;
  #wake: (() => void) | undefined;
  readonly #unsubscribe: () => void;

  constructor(store: ShadowStore) {
    this.#unsubscribe = store.onChange(() => {
      this.#changed = true;
      this.#wake?.();
    });
  }

  async wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (!this.#changed && !signal.aborted) {
      await new Promise<void>((resolve) => {
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

  close(): void {
    this.#unsubscribe();
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
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
function contentOf(report: ShadowReport): string {
  const bytes = toBinary(ShadowReportSchema, {
    ...report,
    startTime: undefined,
    endTime: undefined,
    generateTime: undefined,
  });
  return Buffer.from(bytes).toString("base64");
}

/** MetricsService: ingest, feedback, the report and its live stream, all on one ShadowStore. */
export class ShadowMetricsService implements ServiceImpl<typeof MetricsService> {
  readonly #store: ShadowStore;
  readonly #options: ShadowServiceOptions;
  readonly #observer: ShadowServiceObserver | undefined;
  readonly #shutdownSignal: AbortSignal | undefined;
  readonly #now: () => number;
  readonly #engine: ReportEngine;
  readonly #cache = new Map<
    string,
    { version: number; atMs: number; report: Promise<ShadowReport>; waiters: number; gone: AbortController }
  >();
  /** The labels of each model (name@version) seen, and when it was last seen: for feedback on unknown requests. */
  readonly #modelLabels = new Map<string, { labels: Set<string>; lastMs: number }>();
  /** Refused candidates, by when they were last warned about. */
  readonly #warnedRefusals = new Map<string, number>();
  readonly #logger: Logger | undefined;
  #lastDurationMs = 0;

  constructor(deps: ShadowServiceDeps) {
    this.#store = deps.store;
    this.#engine = deps.engine ?? createAggregateEngine(deps.store);
    deps.store.useJoinWindow(deps.options.joinWindowMs);
    this.#options = deps.options;
    this.#observer = deps.observer;
    this.#shutdownSignal = deps.shutdownSignal;
    this.#now = deps.now ?? Date.now;
    this.#logger = deps.logger;
    for (const { model, labels, lastMs } of this.#store.recentModelLabels()) {
      this.#modelLabels.set(model, { labels, lastMs });
    }
  }

  #learnLabels(record: StoredRecord): void {
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
  #labelsFor(requestId: string): Set<string> {
    const own = this.#store.requestLabels(requestId);
    if (own.size > 0) {
      return own;
    }
    const since = this.#now() - this.#options.retentionMs;
    const labels = new Set<string>();
    for (const { labels: modelLabels, lastMs } of this.#modelLabels.values()) {
      if (lastMs >= since) {
        for (const label of modelLabels) {
          labels.add(label);
        }
      }
    }
    return labels;
  }

  reportPredictions(
    request: ReportPredictionsRequest,
  ): MessageInitShape<typeof ReportPredictionsResponseSchema> {
    const { maxRecordsPerBatch, storeRawText } = this.#options;
    if (request.records.length > maxRecordsPerBatch) {
      throw invalid(`a batch holds at most ${maxRecordsPerBatch} records, got ${request.records.length}`);
    }
    const receivedMs = this.#now();
    const records: StoredRecord[] = request.records.map((record, i) => {
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
        throw invalid(
          `record ${i} (${record.requestId}): a RECORD_SOURCE_MIRROR record must be a SHADOW record of a failed call`,
        );
      }
      const nameProblem = candidateProblem(record.modelName);
      if (nameProblem) {
        throw invalid(`record ${i} (${record.requestId}): model_name (a shadow's candidate) ${nameProblem}`);
      }
      if (record.label.length > MAX_LABEL_LENGTH || record.probabilities.length > MAX_LABELS) {
        throw invalid(`record ${i} (${record.requestId}): label or probabilities too large`);
      }
      const latencyMs = durationToMs(record.latency) ?? 0;
      return {
        requestId: record.requestId,
        batchIndex: record.batchIndex,
        role: record.role,
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
    const result = this.#store.insertRecords(records, this.#options.maxCandidates ?? DEFAULT_MAX_CANDIDATES);
    let refused = 0;
    for (const n of result.refused?.values() ?? []) {
      refused += n;
    }
    for (const record of records) {
      // A refused record teaches no labels: its candidate is not stored.
      if (refused === 0 || record.role !== Role.SHADOW || !result.refused?.has(record.modelName)) {
        this.#learnLabels(record);
      }
    }
    if (this.#observer) {
      for (const role of STORED_ROLES) {
        const sent = records.filter((r) => r.role === role).length;
        const refusedOfRole = role === Role.SHADOW ? refused : 0;
        if (sent > refusedOfRole) {
          this.#observer.ingested(
            role,
            result.acceptedByRole[role],
            sent - refusedOfRole - result.acceptedByRole[role],
            role === Role.SHADOW ? result.replaced : 0,
          );
        }
      }
      if (refused > 0) {
        this.#observer.refused?.("too_many_candidates", refused);
      }
    }
    if (result.refused) {
      this.#warnRefused(result.refused, receivedMs);
    }
    return { acceptedCount: result.accepted, duplicateCount: result.duplicates };
  }

  /**
   * One warning per batch with refusals, naming the refused candidates not warned about in the last minute
   * (a few, truncated; the rest as a count); none when every one was.
   */
  #warnRefused(refused: ReadonlyMap<string, number>, nowMs: number): void {
    if (!this.#logger) {
      return;
    }
    const fresh: string[] = [];
    for (const name of refused.keys()) {
      const last = this.#warnedRefusals.get(name);
      if (last !== undefined && nowMs - last < REFUSAL_WARN_MS && nowMs >= last) {
        continue;
      }
      fresh.push(name);
      if (this.#warnedRefusals.size >= MAX_WARNED_NAMES) {
        for (const [old, at] of this.#warnedRefusals) {
          if (nowMs - at >= REFUSAL_WARN_MS || nowMs < at) {
            this.#warnedRefusals.delete(old);
          }
        }
      }
      if (this.#warnedRefusals.size < MAX_WARNED_NAMES || this.#warnedRefusals.has(name)) {
        this.#warnedRefusals.set(name, nowMs);
      }
    }
    if (fresh.length === 0) {
      return;
    }
    let records = 0;
    for (const n of refused.values()) {
      records += n;
    }
    const shown = fresh
      .slice(0, WARN_NAMES_SHOWN)
      .map((name) => (name.length > WARN_NAME_CHARS ? `${name.slice(0, WARN_NAME_CHARS)}…` : name));
    const more = fresh.length - shown.length;
    this.#logger.warn(
      {
        candidates: shown,
        ...(more > 0 ? { moreCandidates: more } : {}),
        records,
        maxCandidates: this.#options.maxCandidates ?? DEFAULT_MAX_CANDIDATES,
      },
      `SHADOW records of ${fresh.length === 1 ? `a new candidate (${JSON.stringify(shown[0])})` : `${fresh.length} new candidates`} refused: ${this.#options.maxCandidates ?? DEFAULT_MAX_CANDIDATES} candidates are stored already (METRICS_SERVICE_MAX_CANDIDATES)`,
    );
  }

  submitFeedback(request: SubmitFeedbackRequest): MessageInitShape<typeof SubmitFeedbackResponseSchema> {
    try {
      return this.#submitFeedback(request);
    } catch (error) {
      this.#observer?.feedbackRefused?.(ConnectError.from(error).code);
      throw error;
    }
  }

  /**
   * Feedback is evidence, so it needs proof (README: "Feedback needs proof"): the checks run in this order, so that a
   * caller without a token learns nothing about the labels or the requests.
   */
  #submitFeedback(request: SubmitFeedbackRequest): MessageInitShape<typeof SubmitFeedbackResponseSchema> {
    const secret = this.#options.feedbackSecret;
    if (secret === "") {
      throw new ConnectError(
        "feedback is disabled: metrics-service has no METRICS_SERVICE_FEEDBACK_SECRET",
        Code.FailedPrecondition,
      );
    }
    const problem = idProblem(request.requestId, request.batchIndex);
    if (problem) {
      throw invalid(problem);
    }
    if (!verifyFeedbackToken(secret, request.requestId, request.batchIndex, request.feedbackToken)) {
      throw new ConnectError(
        request.feedbackToken === ""
          ? "feedback needs the feedback_token that came with the prediction"
          : "the feedback_token does not belong to this request id and batch index",
        Code.PermissionDenied,
      );
    }
    if (request.label === "" || request.label.length > MAX_LABEL_LENGTH) {
      throw invalid(`label must be 1 to ${MAX_LABEL_LENGTH} characters`);
    }
    const labels = this.#labelsFor(request.requestId);
    if (labels.size === 0) {
      throw new ConnectError(
        "no model's labels are known yet (no prediction was reported), so the label cannot be checked; retry shortly",
        Code.Unavailable,
      );
    }
    if (!labels.has(request.label)) {
      throw invalid(
        `label ${JSON.stringify(request.label.slice(0, 64))} is not one of the model's labels (${[...labels].sort().join(", ")})`,
      );
    }
    const requestKnown = this.#store.upsertFeedback(
      request.requestId,
      request.batchIndex,
      request.label,
      this.#now(),
    );
    this.#observer?.feedback(requestKnown);
    return { requestKnown };
  }

  async getShadowReport(
    request: GetShadowReportRequest,
    context?: HandlerContext,
  ): Promise<MessageInitShape<typeof GetShadowReportResponseSchema>> {
    const report = await this.report(this.#windowOf(request.window), request.maxDisagreements, {
      ...(context ? { signal: context.signal } : {}),
      ...selectorOf(request.candidate),
    });
    return { report };
  }

  /**
   * One report per candidate seen in the window, sorted by name, without the lists of examples; none when no
   * shadow record is in the window.
   */
  async listCandidates(
    request: ListCandidatesRequest,
    context?: HandlerContext,
  ): Promise<MessageInitShape<typeof ListCandidatesResponseSchema>> {
    const windowMs = this.#windowOf(request.window);
    const candidates = await Promise.all(
      this.candidates(windowMs).map((candidate) =>
        this.report(windowMs, 0, {
          candidate,
          lists: false,
          ...(context ? { signal: context.signal } : {}),
        }),
      ),
    );
    return { candidates };
  }

  /** The candidates with a SHADOW record in the window ending now, sorted by name. */
  candidates(windowMs: number): string[] {
    const nowMs = this.#now();
    return this.#store.candidates({
      nowMs,
      windowMs,
      startMs: normalisedStartMs(nowMs, windowMs),
      joinWindowMs: this.#options.joinWindowMs,
    });
  }

  /**
   * What the Prometheus gauges show: each candidate's report over the window, computed at once (never queued), or
   * the primary's alone when no candidate is in the window.
   */
  async gaugeReports(windowMs: number): Promise<ShadowReport[]> {
    const names = this.candidates(windowMs);
    if (names.length === 0) {
      return [await this.report(windowMs, 0, { priority: true, candidate: "" })];
    }
    return Promise.all(names.map((candidate) => this.report(windowMs, 0, { priority: true, candidate })));
  }

  async *watchShadowReport(
    request: WatchShadowReportRequest,
    context: HandlerContext,
  ): AsyncIterable<MessageInitShape<typeof WatchShadowReportResponseSchema>> {
    const windowMs = this.#windowOf(request.window);
    selectorOf(request.candidate);
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
      let lastContent: string | undefined;
      let lastSentMs = Number.NEGATIVE_INFINITY;
      while (!signal.aborted) {
        let report: ShadowReport;
        try {
          report = await this.report(windowMs, request.maxDisagreements, {
            signal,
            ...selectorOf(request.candidate),
          });
        } catch (error) {
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
    } finally {
      waiter.close();
    }
    // The handler's signal also aborts on shutdown; a client that went away never sees what is thrown here.
    if (this.#shutdownSignal?.aborted) {
      throw new ConnectError("metrics-service is shutting down; reconnect", Code.Unavailable);
    }
  }

  /** Counts a caller waiting for a report; when every caller has gone, its queued computation is dropped. */
  #wait(entry: { waiters: number; gone: AbortController }, signal: AbortSignal | undefined): void {
    if (!signal) {
      // A caller without a signal (the gauges) keeps the computation whatever the others do.
      entry.waiters = Number.POSITIVE_INFINITY;
      return;
    }
    entry.waiters++;
    signal.addEventListener(
      "abort",
      () => {
        entry.waiters--;
        if (entry.waiters <= 0) {
          entry.gone.abort();
        }
      },
      { once: true },
    );
  }

  /** How long the last report took to compute, in ms. */
  get lastReportDurationMs(): number {
    return this.#lastDurationMs;
  }

  /**
   * The report for the window ending now, its start normalised (aligned down to the series step) so that nearby
   * windows share buckets. A report computed (or being computed) less than a second ago for the same start, step and
   * list length is reused while nothing was written since, so that many watchers and a scrape cost one computation.
   * `signal`: the caller's; queued work is dropped once every caller waiting for it has gone. `priority`: computed
   * at once, ahead of queued reports (the Prometheus gauges).
   */
  report(
    windowMs: number,
    maxDisagreements = 0,
    how: { signal?: AbortSignal; priority?: boolean; candidate?: string; lists?: boolean } = {},
  ): Promise<ShadowReport> {
    const nowMs = this.#now();
    const limit =
      how.lists === false
        ? 0
        : Math.min(
            maxDisagreements || this.#options.defaultMaxDisagreements,
            this.#options.maxDisagreementsLimit,
          );
    const startMs = normalisedStartMs(nowMs, windowMs);
    const { candidate } = how;
    const key = `${startMs}/${seriesStepMs(windowMs)}/${limit}/${candidate === undefined ? "*" : JSON.stringify(candidate)}`;
    const version = this.#store.version;
    const cached = this.#cache.get(key);
    if (
      cached &&
      cached.version === version &&
      nowMs >= cached.atMs &&
      nowMs - cached.atMs < REPORT_REUSE_MS &&
      !cached.gone.signal.aborted
    ) {
      this.#wait(cached, how.signal);
      return cached.report;
    }
    const started = performance.now();
    const sample = this.#options.reportSampleRatio ?? 1;
    const thresholds =
      sample > 0 && sample < 1
        ? {
            ...this.#options.thresholds,
            maxShadowSilenceMs: this.#options.thresholds.maxShadowSilenceMs / sample,
          }
        : this.#options.thresholds;
    const gone = new AbortController();
    const report = this.#engine.compute(
      {
        nowMs,
        windowMs,
        startMs,
        joinWindowMs: this.#options.joinWindowMs,
        maxDisagreements: limit,
        includeText: this.#options.storeRawText,
        expectedMirrorRatio: this.#options.expectedMirrorRatio,
        ...(this.#options.expectedMirrorRatios
          ? { expectedMirrorRatios: this.#options.expectedMirrorRatios }
          : {}),
        ...(candidate === undefined ? {} : { candidate }),
        thresholds,
      },
      { signal: gone.signal, ...(how.priority ? { priority: true } : {}) },
    );
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
    report.then(
      () => {
        this.#lastDurationMs = performance.now() - started;
      },
      () => {
        // A failed computation is not reused; the caller sees the error.
        if (this.#cache.get(key) === entry) {
          this.#cache.delete(key);
        }
      },
    );
    return report;
  }

  #windowOf(window: Duration | undefined): number {
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
