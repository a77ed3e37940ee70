import { createHash } from "node:crypto";
import { createGrpcClient } from "@shadowmesh/common";
import { MetricsService, Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PredictionReporter, type ReportEntry, type ReporterOptions } from "./reporter.js";
import { quietLogger, startMetricsSink } from "./testing/helpers.js";

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
  const counts = { queue_full: 0, send_failed: 0, shutdown: 0, sent: 0 };
  return {
    counts,
    observer: {
      queueDepth: () => {},
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
  let sink: Awaited<ReturnType<typeof startMetricsSink>>;
  let client: ReturnType<typeof createGrpcClient<typeof MetricsService>>;

  beforeAll(async () => {
    sink = await startMetricsSink();
    client = createGrpcClient(MetricsService, sink.address);
  });

  afterAll(async () => {
    client?.close();
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

  it("drops and counts records when the collector fails, and recovers when it is back", async () => {
    const { counts, observer } = counters();
    const reporter = new PredictionReporter(client, options, quietLogger(), observer);
    sink.state.failing = true;
    try {
      for (let i = 0; i < 5; i++) reporter.report(entry(i, { requestId: `down-${i}` }));
      await reporter.close(5000);
      expect(counts.send_failed).toBe(5);
    } finally {
      sink.state.failing = false;
    }
    const again = new PredictionReporter(client, options, quietLogger(), observer);
    again.report(entry(1, { requestId: "back-1" }));
    await again.close(5000);
    expect(sink.records.some((r) => r.requestId === "back-1")).toBe(true);
  });

  it("counts records it could not send before the shutdown bound", async () => {
    const { counts, observer } = counters();
    const unreachable = createGrpcClient(MetricsService, "127.0.0.1:1");
    try {
      const reporter = new PredictionReporter(
        unreachable,
        { ...options, batchSize: 1 },
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
