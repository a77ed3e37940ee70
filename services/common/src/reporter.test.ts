import { createHash } from "node:crypto";
import { type Client, Code, createClient } from "@connectrpc/connect";
import {
  MetricsService,
  RecordSource,
  Role,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createGrpcJsTransport, type GrpcJsTransport } from "./grpc-transport.js";
import { createLogger } from "./logger.js";
import { PredictionReporter, type ReportEntry, type ReporterOptions } from "./reporter.js";
import { type MetricsSink, startMetricsSink } from "./testing/metrics-sink.js";

const quietLogger = () => createLogger("reporter-test", process.env.LOG_TESTS ? "debug" : "silent");

const options: ReporterOptions = {
  role: "PRIMARY",
  instance: "pod-1",
  includeRawText: false,
  queueSize: 100,
  batchSize: 10,
  intervalMs: 10,
  timeoutMs: 2000,
};

function entry(i: number, overrides: Partial<ReportEntry> = {}): ReportEntry {
  return {
    requestId: `req-${i}`,
    batchIndex: 0,
    modelName: "spam-v1",
    modelVersion: "1.0.0",
    label: "spam",
    labels: ["ham", "spam"],
    probabilities: new Float32Array([0.25, 0.75]),
    latencyNs: 1_500_000_123,
    grpcStatusCode: 0,
    timeMs: 1_700_000_000_000,
    text: `text ${i}`,
    ...overrides,
  };
}

function counters() {
  const counts = { queue_full: 0, send_failed: 0, shutdown: 0, sent: 0, retried: 0 };
  return {
    counts,
    observer: {
      queueDepth: () => {},
      retried: (n: number) => {
        counts.retried += n;
      },
      dropped: (reason: "queue_full" | "send_failed" | "shutdown", n: number) => {
        counts[reason] += n;
      },
      sent: (n: number) => {
        counts.sent += n;
      },
    },
  };
}

describe("PredictionReporter against an in-process MetricsService", () => {
  let sink: MetricsSink;
  let transport: GrpcJsTransport;
  let client: Client<typeof MetricsService>;

  beforeAll(async () => {
    sink = await startMetricsSink();
    transport = createGrpcJsTransport({ address: sink.address });
    client = createClient(MetricsService, transport);
  });

  afterAll(async () => {
    transport?.close();
    await sink?.close();
  });

  it("sends every record in batches with the configured role, a fingerprint and no raw text", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(client, options, quietLogger(), observer);
    reporter.start();
    for (let i = 0; i < 25; i++) reporter.report(entry(i, { requestId: `batch-${i}` }));
    await sink.waitFor((records) => records.filter((r) => r.requestId.startsWith("batch-")).length === 25);
    await reporter.close(1000);
    const record = sink.records.find((r) => r.requestId === "batch-3");
    expect(record).toMatchObject({
      role: Role.PRIMARY,
      source: RecordSource.MODEL_SERVICE,
      modelName: "spam-v1",
      modelVersion: "1.0.0",
      label: "spam",
      grpcStatusCode: 0,
      instance: "pod-1",
      latency: { seconds: 1n, nanos: 500_000_123 },
      time: { seconds: 1_700_000_000n, nanos: 0 },
    });
    expect(record?.probabilities).toEqual([
      expect.objectContaining({ label: "ham", probability: 0.25 }),
      expect.objectContaining({ label: "spam", probability: 0.75 }),
    ]);
    expect(record?.input).toMatchObject({
      sha256: createHash("sha256").update("text 3").digest("hex"),
      length: 6,
      text: "",
    });
    expect(counts).toMatchObject({ sent: 25, queue_full: 0, send_failed: 0 });
  });

  it("includes the raw text only when the operator opted in", async () => {
    const reporter = new PredictionReporter(
      client,
      { ...options, role: "SHADOW", includeRawText: true },
      quietLogger(),
    );
    reporter.start();
    reporter.report(entry(1, { requestId: "raw-1" }));
    await reporter.close(5000);
    expect(sink.records.find((r) => r.requestId === "raw-1")).toMatchObject({
      role: Role.SHADOW,
      input: { text: "text 1" },
    });
  });

  it("drops and counts records when the queue is full, without blocking the caller", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(client, { ...options, queueSize: 10 }, quietLogger(), observer);
    for (let i = 0; i < 15; i++) reporter.report(entry(i, { requestId: `full-${i}` }));
    expect(counts.queue_full).toBe(5);
    expect(reporter.depth).toBe(10);
    await reporter.close(5000);
    expect(counts.sent).toBe(10);
  });

  it("marks records from a mirroring caller as RECORD_SOURCE_MIRROR", async () => {
    const reporter = new PredictionReporter(
      client,
      { ...options, role: "SHADOW", source: "MIRROR" },
      quietLogger(),
    );
    reporter.report(
      entry(1, {
        requestId: "mirror-1",
        label: "",
        labels: [],
        probabilities: undefined,
        modelName: "",
        modelVersion: "",
        grpcStatusCode: Code.DeadlineExceeded,
      }),
    );
    await reporter.close(5000);
    expect(sink.records.find((r) => r.requestId === "mirror-1")).toMatchObject({
      role: Role.SHADOW,
      source: RecordSource.MIRROR,
      grpcStatusCode: Code.DeadlineExceeded,
      label: "",
      probabilities: [],
      input: { sha256: createHash("sha256").update("text 1").digest("hex"), length: 6 },
    });
  });

  it("retries a batch whose send timed out, and counts it sent, not dropped", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(
      client,
      { ...options, timeoutMs: 200, retryDelayMs: 10, maxAttempts: 3 },
      quietLogger(),
      observer,
    );
    // The first attempt hangs past its deadline after the collector stored the batch (a slow collector): the
    // retry is answered, the records are stored once, and nothing is counted as dropped.
    sink.state.hangCalls = 1;
    sink.state.storeBeforeHang = true;
    const callsBefore = sink.state.calls;
    const duplicatesBefore = sink.state.duplicates;
    try {
      for (let i = 0; i < 4; i++) reporter.report(entry(i, { requestId: `slow-${i}` }));
      await reporter.close(10_000);
    } finally {
      sink.state.hangCalls = 0;
      sink.state.storeBeforeHang = false;
    }
    expect(sink.state.calls - callsBefore).toBe(2);
    expect(sink.state.duplicates - duplicatesBefore).toBe(4);
    expect(sink.records.filter((r) => r.requestId.startsWith("slow-"))).toHaveLength(4);
    expect(counts).toMatchObject({ sent: 4, retried: 4, send_failed: 0, shutdown: 0 });
  });

  it("gives up after the bounded number of attempts and only then counts the records dropped", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(
      client,
      { ...options, timeoutMs: 100, retryDelayMs: 10, maxAttempts: 3 },
      quietLogger(),
      observer,
    );
    sink.state.hangCalls = 100;
    const callsBefore = sink.state.calls;
    try {
      for (let i = 0; i < 3; i++) reporter.report(entry(i, { requestId: `hung-${i}` }));
      await reporter.close(10_000);
    } finally {
      sink.state.hangCalls = 0;
    }
    expect(sink.state.calls - callsBefore).toBe(3);
    expect(counts).toMatchObject({ sent: 0, retried: 6, send_failed: 3, shutdown: 0 });
    expect(sink.records.some((r) => r.requestId.startsWith("hung-"))).toBe(false);
  });

  it("does not retry a batch the collector refused as invalid", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(
      client,
      { ...options, retryDelayMs: 10 },
      quietLogger(),
      observer,
    );
    sink.state.refuse = true;
    const callsBefore = sink.state.calls;
    try {
      reporter.report(entry(1, { requestId: "refused-1" }));
      await reporter.close(5000);
    } finally {
      sink.state.refuse = false;
    }
    expect(sink.state.calls - callsBefore).toBe(1);
    expect(counts).toMatchObject({ retried: 0, send_failed: 1 });
  });

  it("drops and counts records when the collector keeps failing, and recovers when it is back", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(
      client,
      { ...options, retryDelayMs: 10 },
      quietLogger(),
      observer,
    );
    sink.state.failing = true;
    try {
      for (let i = 0; i < 5; i++) reporter.report(entry(i, { requestId: `down-${i}` }));
      await reporter.close(5000);
      expect(counts.send_failed).toBe(5);
      expect(counts.retried).toBe(10);
    } finally {
      sink.state.failing = false;
    }
    const again = new PredictionReporter(client, options, quietLogger(), observer);
    again.report(entry(1, { requestId: "back-1" }));
    await again.close(5000);
    expect(sink.records.some((r) => r.requestId === "back-1")).toBe(true);
  });

  it("keeps records through an outage of metrics-service and delivers them when it is back", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(
      client,
      { ...options, retryDelayMs: 10, maxAttempts: 2 },
      quietLogger(),
      observer,
    );
    sink.state.failing = true;
    const callsBefore = sink.state.calls;
    try {
      for (let i = 0; i < 5; i++) reporter.report(entry(i, { requestId: `outage-${i}` }));
      reporter.start();
      // Several rounds of attempts fail (each round is maxAttempts calls), and nothing is dropped meanwhile.
      // The batch is out of the queue while an attempt is under way: wait for a moment between rounds, when the
      // failed batch is back at the head of the queue.
      await vi.waitFor(
        () => {
          expect(sink.state.calls - callsBefore).toBeGreaterThanOrEqual(4);
          expect(reporter.depth).toBe(5);
        },
        { timeout: 20_000, interval: 20 },
      );
      expect(counts.send_failed).toBe(0);
    } finally {
      sink.state.failing = false;
    }
    await sink.waitFor((records) => records.filter((r) => r.requestId.startsWith("outage-")).length === 5);
    await reporter.close(5000);
    expect(counts).toMatchObject({ sent: 5, send_failed: 0, shutdown: 0, queue_full: 0 });
  });

  it("counts records it could not send before the shutdown bound", async () => {
    const { counts, observer } = counters();
    const unreachable = createGrpcJsTransport({ address: "127.0.0.1:1" });
    try {
      const reporter = new PredictionReporter(
        createClient(MetricsService, unreachable),
        { ...options, batchSize: 1, retryDelayMs: 10 },
        quietLogger(),
        observer,
      );
      for (let i = 0; i < 3; i++) reporter.report(entry(i));
      await reporter.close(5000);
      expect(counts.send_failed + counts.shutdown).toBe(3);
      expect(counts.sent).toBe(0);
    } finally {
      unreachable.close();
    }
  });

  it("does nothing when reporting is disabled", async () => {
    const reporter = new PredictionReporter(undefined, options, quietLogger());
    reporter.report(entry(1));
    expect(reporter.enabled).toBe(false);
    expect(reporter.depth).toBe(0);
    await reporter.close(10);
  });
});
