import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type ShadowReport,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ReportOptions } from "./report.js";
import {
  createAggregateEngine,
  createInlineEngine,
  createWorkerEngine,
  type ReportEngine,
} from "./report-engine.js";
import { ShadowStore } from "./store.js";
import { pair, stored } from "./testing/records.js";

const NOW = 1_800_000_000_000;
const options: ReportOptions = {
  nowMs: NOW,
  windowMs: 3_600_000,
  joinWindowMs: 60_000,
  maxDisagreements: 10,
  includeText: true,
  thresholds: {
    minPairs: 5,
    minAgreement: 0.5,
    maxErrorRateIncrease: 0.01,
    maxLatencyP99Ratio: 1.5,
    latencySlackMs: 2,
    minFeedback: 1,
    maxAccuracyDrop: 0.02,
    minCoverage: 0.9,
    maxShadowSilenceMs: 30_000,
  },
  expectedMirrorRatio: 1,
};

/** The report's content; the time it was generated naturally differs. */
const bytes = (report: ShadowReport) => toBinary(ShadowReportSchema, { ...report, generateTime: undefined });

describe("report engines", () => {
  let dir: string;
  let store: ShadowStore;
  const engines: ReportEngine[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "shadow-engine-"));
    store = new ShadowStore({ dataDir: dir });
  });

  afterEach(async () => {
    await Promise.all(engines.splice(0).map((engine) => engine.close()));
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("computes on a worker thread exactly the report computed inline, and sees every committed write", async () => {
    const records = [];
    for (let i = 0; i < 50; i++) {
      records.push(
        ...pair(
          `e${i}`,
          NOW - 1000 * i,
          { label: "spam", latencyMs: i },
          { label: i % 4 ? "spam" : "ham", text: `t${i}` },
        ),
      );
    }
    store.insertRecords(records.map(stored));
    store.upsertFeedback("e4", 0, "ham", NOW);
    const worker = createWorkerEngine(store.file);
    engines.push(worker);
    const inline = createInlineEngine(store);
    const fromWorker = await worker.compute(options);
    expect(fromWorker.totals?.pairCount).toBe(50n);
    expect(fromWorker.recentDisagreements[0]?.input?.text).toBe("t0");
    expect(bytes(fromWorker)).toEqual(bytes(await inline.compute(options)));

    store.insertRecords(pair("late", NOW - 10).map(stored));
    expect((await worker.compute(options)).totals?.pairCount).toBe(51n);
  });

  it("answers concurrent requests each with its own report", async () => {
    store.insertRecords(pair("c", NOW - 10).map(stored));
    const worker = createWorkerEngine(store.file);
    engines.push(worker);
    const [wide, narrow] = await Promise.all([
      worker.compute(options),
      worker.compute({ ...options, nowMs: NOW + 3_600_000 }),
    ]);
    expect(wide.totals?.pairCount).toBe(1n);
    expect(narrow.totals?.pairCount).toBe(0n);
  });

  it("fails the request, not the process, when the worker cannot read the store, and refuses work once closed", async () => {
    const broken = createWorkerEngine(path.join(dir, "missing.db"));
    engines.push(broken);
    await expect(broken.compute(options)).rejects.toThrow();
    await expect(broken.compute(options)).rejects.toThrow();
    const worker = createWorkerEngine(store.file);
    await worker.close();
    await expect(worker.compute(options)).rejects.toThrow(/closed/);
  });

  it("aggregate engine: a bounded queue, work dropped once its caller has gone, the gauges ahead of the queue", async () => {
    store.insertRecords(pair("q1", NOW - 120_000).map(stored));
    const engine = createAggregateEngine(store, 2);
    engines.push(engine);
    const aligned = { ...options, startMs: NOW - 3_600_000 - ((NOW - 3_600_000) % 60_000) };
    const gone = new AbortController();
    const first = engine.compute(aligned, { signal: gone.signal });
    const second = engine.compute(aligned);
    // The queue holds 2: a third is refused at once, not queued without bound.
    const third = await engine.compute(aligned).catch((error: unknown) => ConnectError.from(error).code);
    expect(third).toBe(Code.ResourceExhausted);
    // The gauges' report never waits behind the queue.
    const gauges = await engine.compute(aligned, { priority: true });
    expect(gauges.totals?.pairCount).toBe(1n);
    // The first caller goes away before its turn: its work leaves the queue, the others' is done.
    gone.abort();
    expect(await first.catch((error: unknown) => ConnectError.from(error).code)).toBe(Code.Canceled);
    expect((await second).totals?.pairCount).toBe(1n);
    await engine.close();
    expect(await engine.compute(aligned).catch((error: unknown) => ConnectError.from(error).code)).toBe(
      Code.Unavailable,
    );
  });
});
