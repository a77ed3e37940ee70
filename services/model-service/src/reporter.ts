import { createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { GrpcCallOptions, Logger } from "@shadowmesh/common";
import type { ReportPredictionsRequestSchema } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  type PredictionRecord,
  PredictionRecordSchema,
  type ReportPredictionsRequest,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";

/** What the request path hands over about one prediction (or failed call); turned into a record off the path. */
export interface ReportEntry {
  requestId: string;
  batchIndex: number;
  modelName: string;
  modelVersion: string;
  /** Empty when the call failed. */
  label: string;
  /** Labels and probabilities; empty when the call failed. */
  labels: readonly string[];
  probabilities: ArrayLike<number> | undefined;
  /** Server-side latency from receipt to response, in ns. */
  latencyNs: number;
  grpcStatusCode: number;
  /** When the prediction was made, in ms since the epoch. */
  timeMs: number;
  text: string;
}

/** The one method of MetricsService the reporter calls (a GrpcClient in production). */
export interface ReportSink {
  reportPredictions(
    request: MessageInitShape<typeof ReportPredictionsRequestSchema>,
    options?: GrpcCallOptions,
  ): Promise<unknown>;
}

export interface ReporterOptions {
  role: "PRIMARY" | "SHADOW";
  instance: string;
  /** Opt-in: send the raw text with each record. */
  includeRawText: boolean;
  queueSize: number;
  batchSize: number;
  intervalMs: number;
  timeoutMs: number;
}

export interface ReporterObserver {
  queueDepth(depth: number): void;
  dropped(reason: "queue_full" | "send_failed" | "shutdown", count: number): void;
  sent(count: number): void;
}

/**
 * Reports every prediction to metrics-service (MetricsService.ReportPredictions) without ever sitting on the
 * request path: `report` only appends to a bounded in-memory queue; a timer (or a full batch) sends batches of
 * records, one call at a time. When the queue is full, or a send fails (collector slow or down), records are
 * dropped and counted: the comparison tolerates gaps (unmatched records), the serving path does not tolerate
 * back-pressure. Hashing the input and building protobuf records also happens at send time, off the path.
 */
export class PredictionReporter {
  #queue: ReportEntry[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #sending: Promise<void> | undefined;
  #kick = false;
  #lastWarnAt = 0;
  readonly #role: Role;

  constructor(
    private readonly sink: ReportSink | undefined,
    private readonly options: ReporterOptions,
    private readonly logger: Logger,
    private readonly observer?: ReporterObserver,
  ) {
    this.#role = options.role === "SHADOW" ? Role.SHADOW : Role.PRIMARY;
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

  /** Queues one entry; O(1), never blocks, never throws. */
  report(entry: ReportEntry): void {
    if (!this.sink) return;
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
    if (this.#sending || this.#queue.length === 0 || !this.sink) {
      this.observer?.queueDepth(this.#queue.length);
      return;
    }
    this.#sending = (async () => {
      while (this.#queue.length > 0) {
        await this.#sendBatch();
      }
    })().finally(() => {
      this.#sending = undefined;
      this.observer?.queueDepth(this.#queue.length);
    });
  }

  async #sendBatch(): Promise<void> {
    const sink = this.sink;
    if (!sink) return;
    const entries = this.#queue.splice(0, this.options.batchSize);
    this.observer?.queueDepth(this.#queue.length);
    const request = { records: entries.map((entry) => this.toRecord(entry)) } as ReportPredictionsRequest;
    try {
      await sink.reportPredictions(request, { timeoutMs: this.options.timeoutMs });
      this.observer?.sent(entries.length);
    } catch (error) {
      this.observer?.dropped("send_failed", entries.length);
      // One warning per 10 s at most: a collector that is down must not flood the logs.
      const now = Date.now();
      if (now - this.#lastWarnAt > 10_000) {
        this.#lastWarnAt = now;
        this.logger.warn(
          { err: error instanceof Error ? error.message : String(error), dropped: entries.length },
          "reporting predictions to metrics-service failed; records dropped",
        );
      }
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
    const seconds = Math.floor(entry.latencyNs / 1e9);
    return create(PredictionRecordSchema, {
      requestId: entry.requestId,
      batchIndex: entry.batchIndex,
      role: this.#role,
      modelName: entry.modelName,
      modelVersion: entry.modelVersion,
      label: entry.label,
      probabilities,
      latency: { seconds: BigInt(seconds), nanos: Math.round(entry.latencyNs - seconds * 1e9) },
      grpcStatusCode: entry.grpcStatusCode,
      time: timestampFromMs(entry.timeMs),
      input: {
        sha256: createHash("sha256").update(entry.text, "utf8").digest("hex"),
        length: entry.text.length,
        text: this.options.includeRawText ? entry.text : "",
      },
      instance: this.options.instance,
    });
  }

  /**
   * Stops the timer and sends what is queued, for at most `timeoutMs`; whatever is left then is dropped and
   * counted (reason "shutdown").
   */
  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.sink) return;
    const deadline = Date.now() + timeoutMs;
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
