import { createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ReportPredictionsRequestSchema } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  type InputFingerprint,
  InputFingerprintSchema,
  type PredictionRecord,
  PredictionRecordSchema,
  RecordSource,
  type ReportPredictionsRequest,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { Logger } from "./logger.js";
import { reportSampled } from "./report-sampling.js";

/** What the request path hands over about one prediction (or failed call); turned into a record off the path. */
export interface ReportEntry {
  requestId: string;
  batchIndex: number;
  /** Empty when not known (a mirrored call that failed before the shadow said which model it serves). */
  modelName: string;
  modelVersion: string;
  /** Empty when the call failed. */
  label: string;
  /** Labels and probabilities; empty when the call failed. */
  labels: readonly string[];
  probabilities: ArrayLike<number> | undefined;
  /**
   * Latency in ns: server-side from receipt to response for a model-service's own record; the caller's elapsed
   * time for a mirror record.
   */
  latencyNs: number;
  grpcStatusCode: number;
  /** When the prediction was made (or the call ended), in ms since the epoch. */
  timeMs: number;
  text: string;
}

/**
 * The one method of MetricsService the reporter calls: in production a connect client,
 * `createClient(MetricsService, createGrpcJsTransport({ address }))`.
 */
export interface ReportSink {
  reportPredictions(
    request: MessageInitShape<typeof ReportPredictionsRequestSchema>,
    options?: { timeoutMs?: number },
  ): Promise<unknown>;
}

/** Who observed the outcomes a reporter reports (PredictionRecord.source). */
export type ReportSource = "MODEL_SERVICE" | "MIRROR";

export interface ReporterOptions {
  role: "PRIMARY" | "SHADOW";
  /**
   * Who observes the outcomes: "MODEL_SERVICE" (default) for a model-service reporting its own answers, "MIRROR"
   * for the mirroring caller (app-service) reporting mirrored calls that failed at or on the way to the shadow.
   */
  source?: ReportSource;
  instance: string;
  /** Opt-in: send the raw text with each record. */
  includeRawText: boolean;
  queueSize: number;
  batchSize: number;
  intervalMs: number;
  /** Deadline of one ReportPredictions attempt. */
  timeoutMs: number;
  /**
   * Attempts per batch (the first send included) before its records are dropped; default 3. ReportPredictions is
   * idempotent (metrics-service stores each record once), so a batch whose attempt timed out — and may have been
   * stored after all — is simply sent again.
   */
  maxAttempts?: number;
  /** Pause before the first retry, doubled before each further one; default 100 ms. */
  retryDelayMs?: number;
  /**
   * Consistent report sampling (report-sampling.ts): the share of requests (0–1, default 1) whose records are
   * reported, chosen by a hash of the request id, the same on every side so that kept pairs stay whole. Every
   * reporter of a mesh (both model-services, app-service's MIRROR records) and metrics-service's
   * METRICS_SERVICE_REPORT_SAMPLE_PERCENT must use the same rate.
   */
  sampleRate?: number;
}

export interface ReporterObserver {
  queueDepth(depth: number): void;
  dropped(reason: "queue_full" | "send_failed" | "shutdown", count: number): void;
  sent(count: number): void;
  /** A batch of `count` records is being sent again after a failed attempt. */
  retried?(count: number): void;
}

/**
 * Failures a new attempt cannot fix: metrics-service understood the batch and refused it. Everything else — a
 * deadline, UNAVAILABLE, a transport reset, an overloaded server — is retried.
 */
const FINAL = new Set<Code>([
  Code.InvalidArgument,
  Code.FailedPrecondition,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.Unimplemented,
  Code.NotFound,
  Code.OutOfRange,
  Code.AlreadyExists,
]);

/**
 * The input fingerprint of a record: SHA-256 (hex) of the UTF-8 text and its length in UTF-16 code units
 * (InputFingerprint in metrics_service.proto). One function for every reporter, so that a model-service's record
 * and a mirror record of the same text always carry the same fingerprint.
 */
export function inputFingerprint(text: string, includeRawText = false): InputFingerprint {
  return create(InputFingerprintSchema, {
    sha256: createHash("sha256").update(text, "utf8").digest("hex"),
    length: text.length,
    text: includeRawText ? text : "",
  });
}

/** The pause after metrics-service first looks down, and the longest pause while it stays down. */
const OUTAGE_FIRST_PAUSE_MS = 500;
const OUTAGE_MAX_PAUSE_MS = 5000;

/**
 * Reports predictions to metrics-service (MetricsService.ReportPredictions) without ever sitting on the request
 * path: `report` only appends to a bounded in-memory queue; a timer (or a full batch) sends batches of records, one
 * call at a time. A batch whose send fails for a reason a retry can fix (deadline, UNAVAILABLE, …) is sent again,
 * up to `maxAttempts` times with a doubling pause. If it still fails, metrics-service is taken to be down: the batch
 * goes back to the head of the queue and sending pauses (0.5 s, doubling up to 5 s) until it is tried again, so an
 * outage shorter than what the queue holds loses nothing. Records are dropped and counted (`send_failed`) only when
 * metrics-service refuses a batch outright or the queue has no room to keep it. When the queue is full, new records
 * are dropped and counted
 * (`queue_full`): the comparison tolerates gaps (unmatched records), the serving path does not tolerate
 * back-pressure. Hashing the input and building protobuf records also happens at send time, off the path.
 */
export class PredictionReporter {
  #queue: ReportEntry[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #sending: Promise<void> | undefined;
  #kick = false;
  #lastWarnAt = 0;
  /** Set by `close`: no attempt starts after it, and none outlasts it. */
  #closeDeadline: number | undefined;
  readonly #role: Role;
  readonly #source: RecordSource;
  readonly #maxAttempts: number;
  readonly #retryDelayMs: number;
  /** While metrics-service is down: no batch is sent before this time (ms since the epoch). */
  #holdUntil = 0;
  #holdMs = OUTAGE_FIRST_PAUSE_MS;

  constructor(
    private readonly sink: ReportSink | undefined,
    private readonly options: ReporterOptions,
    private readonly logger: Logger,
    private readonly observer?: ReporterObserver,
  ) {
    this.#role = options.role === "SHADOW" ? Role.SHADOW : Role.PRIMARY;
    this.#source = options.source === "MIRROR" ? RecordSource.MIRROR : RecordSource.MODEL_SERVICE;
    this.#maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 3));
    this.#retryDelayMs = Math.max(0, options.retryDelayMs ?? 100);
  }

  /** Whether records are sent anywhere (an address is configured). */
  get enabled(): boolean {
    return this.sink !== undefined;
  }

  get depth(): number {
    return this.#queue.length;
  }

  start(): void {
    if (!this.sink || this.#timer) return;
    this.#timer = setInterval(() => this.#sendAll(), this.options.intervalMs);
    this.#timer.unref();
  }

  /** Queues one entry (unless sampled out); O(1), never blocks, never throws. */
  report(entry: ReportEntry): void {
    if (!this.sink) return;
    if (!reportSampled(entry.requestId, this.options.sampleRate ?? 1)) return;
    if (this.#queue.length >= this.options.queueSize) {
      this.observer?.dropped("queue_full", 1);
      return;
    }
    this.#queue.push(entry);
    if (this.#queue.length >= this.options.batchSize && !this.#kick) {
      this.#kick = true;
      setImmediate(() => {
        this.#kick = false;
        this.#sendAll();
      });
    }
  }

  /** Sends batches until the queue is empty (unless a send is already under way). */
  #sendAll(): void {
    const holding = this.#closeDeadline === undefined && Date.now() < this.#holdUntil;
    if (this.#sending || this.#queue.length === 0 || !this.sink || holding) {
      this.observer?.queueDepth(this.#queue.length);
      return;
    }
    this.#sending = (async () => {
      while (this.#queue.length > 0) {
        if (!(await this.#sendBatch())) {
          break;
        }
      }
    })().finally(() => {
      this.#sending = undefined;
      this.observer?.queueDepth(this.#queue.length);
    });
  }

  /** Sends the next batch; false when metrics-service looks down and the batch was kept for later. */
  async #sendBatch(): Promise<boolean> {
    const sink = this.sink;
    if (!sink) return false;
    const entries = this.#queue.splice(0, this.options.batchSize);
    this.observer?.queueDepth(this.#queue.length);
    const request = { records: entries.map((entry) => this.toRecord(entry)) } as ReportPredictionsRequest;
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) {
        const pause = this.#retryDelayMs * 2 ** (attempt - 2);
        if (this.#closeDeadline !== undefined && Date.now() + pause >= this.#closeDeadline) {
          break;
        }
        this.observer?.retried?.(entries.length);
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
      let timeoutMs = this.options.timeoutMs;
      if (this.#closeDeadline !== undefined) {
        timeoutMs = Math.min(timeoutMs, this.#closeDeadline - Date.now());
        if (timeoutMs <= 0) {
          break;
        }
      }
      try {
        await sink.reportPredictions(request, { timeoutMs });
        this.observer?.sent(entries.length);
        this.#holdUntil = 0;
        this.#holdMs = OUTAGE_FIRST_PAUSE_MS;
        return true;
      } catch (error) {
        lastError = error;
        if (FINAL.has(ConnectError.from(error).code)) {
          break;
        }
      }
    }
    let dropped = entries;
    if (this.#closeDeadline === undefined && !FINAL.has(ConnectError.from(lastError).code)) {
      // metrics-service looks down: keep what the queue has room for, at its head (oldest first), and pause.
      const room = Math.max(0, this.options.queueSize - this.#queue.length);
      this.#queue.unshift(...entries.slice(0, room));
      dropped = entries.slice(room);
      this.#holdUntil = Date.now() + this.#holdMs;
      this.#holdMs = Math.min(this.#holdMs * 2, OUTAGE_MAX_PAUSE_MS);
      this.observer?.queueDepth(this.#queue.length);
      this.#warn(
        lastError,
        dropped.length,
        "reporting predictions to metrics-service failed; records kept for later",
      );
      if (dropped.length > 0) {
        this.observer?.dropped("send_failed", dropped.length);
      }
      return false;
    }
    const closing = this.#closeDeadline !== undefined && Date.now() >= this.#closeDeadline;
    this.observer?.dropped(closing ? "shutdown" : "send_failed", dropped.length);
    this.#warn(lastError, dropped.length, "reporting predictions to metrics-service failed; records dropped");
    return true;
  }

  #warn(lastError: unknown, dropped: number, message: string): void {
    // One warning per 10 s at most: a collector that is down must not flood the logs.
    const now = Date.now();
    if (now - this.#lastWarnAt > 10_000) {
      this.#lastWarnAt = now;
      this.logger.warn(
        {
          err: lastError instanceof Error ? lastError.message : String(lastError),
          dropped,
          queued: this.#queue.length,
          maxAttempts: this.#maxAttempts,
        },
        message,
      );
    }
  }

  /** Builds the PredictionRecord of an entry. */
  toRecord(entry: ReportEntry): PredictionRecord {
    const probabilities = [];
    if (entry.probabilities) {
      for (let i = 0; i < entry.labels.length; i++) {
        probabilities.push({ label: entry.labels[i] as string, probability: entry.probabilities[i] ?? 0 });
      }
    }
    const latencyNs = Math.max(0, entry.latencyNs);
    const seconds = Math.floor(latencyNs / 1e9);
    return create(PredictionRecordSchema, {
      requestId: entry.requestId,
      batchIndex: entry.batchIndex,
      role: this.#role,
      modelName: entry.modelName,
      modelVersion: entry.modelVersion,
      label: entry.label,
      probabilities,
      latency: { seconds: BigInt(seconds), nanos: Math.round(latencyNs - seconds * 1e9) },
      grpcStatusCode: entry.grpcStatusCode,
      time: timestampFromMs(entry.timeMs),
      input: inputFingerprint(entry.text, this.options.includeRawText),
      instance: this.options.instance,
      source: this.#source,
    });
  }

  /**
   * Stops the timer and sends what is queued, for at most `timeoutMs` (retries included); whatever is left then is
   * dropped and counted (reason "shutdown").
   */
  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.sink) return;
    const deadline = Date.now() + timeoutMs;
    this.#closeDeadline = deadline;
    while (Date.now() < deadline && (this.#queue.length > 0 || this.#sending)) {
      this.#sendAll();
      const sending = this.#sending;
      if (!sending) break;
      const left = deadline - Date.now();
      await Promise.race([sending, new Promise((resolve) => setTimeout(resolve, Math.max(0, left)).unref())]);
    }
    if (this.#queue.length > 0) {
      this.observer?.dropped("shutdown", this.#queue.length);
      this.logger.warn({ dropped: this.#queue.length }, "shutdown: unsent prediction records dropped");
      this.#queue = [];
    }
    this.observer?.queueDepth(0);
  }
}
