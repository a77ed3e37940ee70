/**
 * metrics-service at scale (issue 12): report latency and RSS at 10 k / 100 k / 1 M pairs in the default 1 h
 * window, ingest records/s with a 1 M-pair store, the report storm, and the user request rate one metrics-service
 * supports at 100 % and 10 % report sampling. A benchmark, not a test: it prints numbers (and ratios measured in the
 * same run, since the machine may be shared), it asserts nothing.
 *
 *   npm run bench:metrics                      # up to 1 M pairs (a few minutes)
 *   BENCH_MAX_PAIRS=100000 npm run bench:metrics
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { ShadowMetricsService, type ShadowServiceOptions } from "../metrics-service.js";
import { buildReport, normalisedStartMs, queryStartMs, type ReportOptions } from "../report.js";
import { createAggregateEngine } from "../report-engine.js";
import { ShadowStore, type StoredRecord, type StoredRole } from "../store.js";

const HOUR = 3_600_000;
const JOIN = 60_000;
const MAX_PAIRS = Number(process.env.BENCH_MAX_PAIRS ?? 1_000_000);
const SIZES = [10_000, 100_000, 1_000_000].filter((n) => n <= MAX_PAIRS);
const BATCH = 500;

const thresholds: ReportOptions["thresholds"] = {
  minPairs: 100,
  minAgreement: 0.9,
  maxErrorRateIncrease: 0.01,
  maxLatencyP99Ratio: 1.5,
  latencySlackMs: 2,
  minFeedback: 30,
  maxAccuracyDrop: 0.02,
  minCoverage: 0.9,
  maxShadowSilenceMs: 30_000,
};

function uuidv7(ms: number): string {
  const hex = ms.toString(16).padStart(12, "0") + randomBytes(10).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The two records of one request, shaped like model-service's reports (~230 bytes each). */
function pairRecords(timeMs: number): StoredRecord[] {
  const requestId = uuidv7(timeMs);
  const spam = Math.random();
  const sha = randomBytes(32).toString("hex");
  const record = (role: StoredRole, label: string, p: number, version: string): StoredRecord => ({
    requestId,
    batchIndex: 0,
    role,
    modelName: "spam",
    modelVersion: version,
    label,
    probabilities: [
      ["ham", 1 - p],
      ["spam", p],
    ],
    latencyMs: 0.3 + Math.random() * 2,
    grpcCode: 0,
    timeMs: timeMs + (role === Role.SHADOW ? 2 : 0),
    receivedMs: timeMs + 50,
    inputSha256: sha,
    inputLength: 80,
    inputText: null,
    instance: role === Role.PRIMARY ? "model-primary-0" : "model-shadow-0",
    source: 1,
  });
  const shadowSpam = Math.min(1, Math.max(0, spam + (Math.random() - 0.5) * 0.1));
  return [
    record(Role.PRIMARY, spam > 0.5 ? "spam" : "ham", spam, "1.0.0"),
    record(Role.SHADOW, shadowSpam > 0.5 ? "spam" : "ham", shadowSpam, "2.0.0"),
  ];
}

const writtenBytes = (): number => {
  const io = readFileSync("/proc/self/io", "utf8");
  return Number(/write_bytes: (\d+)/.exec(io)?.[1] ?? 0);
};
const rssMb = () => Math.round(process.memoryUsage().rss / 1e6);

/** Fills the store up to `pairs` pairs spread over the hour before `nowMs`; returns records/s and bytes/record. */
function fill(store: ShadowStore, from: number, to: number, nowMs: number) {
  const started = performance.now();
  const bytes = writtenBytes();
  let batch: StoredRecord[] = [];
  for (let i = from; i < to; i++) {
    batch.push(...pairRecords(nowMs - HOUR + Math.floor((i / MAX_PAIRS) * (HOUR - 5000))));
    if (batch.length >= BATCH) {
      store.insertRecords(batch);
      batch = [];
    }
  }
  if (batch.length > 0) {
    store.insertRecords(batch);
  }
  const seconds = (performance.now() - started) / 1000;
  const records = 2 * (to - from);
  return { recordsPerSecond: records / seconds, bytesPerRecord: (writtenBytes() - bytes) / records };
}

function options(nowMs: number, windowMs = HOUR): ReportOptions {
  return {
    nowMs,
    windowMs,
    startMs: normalisedStartMs(nowMs, windowMs),
    joinWindowMs: JOIN,
    maxDisagreements: 20,
    includeText: false,
    expectedMirrorRatio: 1,
    thresholds,
  };
}

function timeIt<T>(run: () => T, times = 5): { ms: number; result: T } {
  let best = Number.POSITIVE_INFINITY;
  let result: T | undefined;
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    result = run();
    best = Math.min(best, performance.now() - started);
  }
  return { ms: best, result: result as T };
}

const dir = mkdtempSync(path.join(tmpdir(), "bench-metrics-"));
const nowMs = Date.now();
const store = new ShadowStore({ dataDir: dir, joinWindowMs: JOIN, synchronous: "FULL" });
console.log(`# metrics-service at scale (store in ${dir}, SQLite synchronous FULL, batches of ${BATCH})`);
console.log("pairs in window | report (aggregates) | RSS | reference report (every row) | ratio");
let filled = 0;
const rows: string[] = [];
for (const size of SIZES) {
  fill(store, filled, size, nowMs);
  filled = size;
  global.gc?.();
  const aggregate = timeIt(() => store.aggregateReport(options(nowMs)));
  const rss = rssMb();
  const pairs = Number(aggregate.result.totals?.pairCount ?? 0n);
  // The reference (today's way: every row of the window read and joined), once, where it fits in time.
  let reference = "skipped";
  let ratio = "";
  if (size <= 100_000) {
    const ref = timeIt(
      () =>
        buildReport(store.reportRows(queryStartMs(options(nowMs))), options(nowMs), (id, i, c) =>
          store.details(id, i, c),
        ),
      1,
    );
    reference = `${ref.ms.toFixed(0)} ms`;
    ratio = `${(ref.ms / aggregate.ms).toFixed(0)}×`;
  }
  const row = `${pairs} | ${aggregate.ms.toFixed(1)} ms | ${rss} MB | ${reference} | ${ratio}`;
  rows.push(row);
  console.log(row);
}

// Ingest with the store holding MAX_PAIRS pairs: 100 000 more records in batches of 500, FULL durability.
const more = Math.min(50_000, MAX_PAIRS);
const ingest = fill(store, filled, filled + more, nowMs);
console.log(
  `ingest with ${filled} pairs stored: ${Math.round(ingest.recordsPerSecond)} records/s, ` +
    `${(ingest.bytesPerRecord / 1024).toFixed(1)} KB written per record (batches of ${BATCH}, FULL)`,
);

// The report storm: 60 reports with distinct windows at once, while the gauges' report (what /metrics computes)
// is timed every few ms.
const serviceOptions: ShadowServiceOptions = {
  joinWindowMs: JOIN,
  defaultWindowMs: HOUR,
  maxWindowMs: 168 * HOUR,
  defaultMaxDisagreements: 20,
  maxDisagreementsLimit: 500,
  storeRawText: false,
  maxRecordsPerBatch: 10_000,
  watchIntervalMs: 1000,
  watchMinIntervalMs: 250,
  watchRefreshMs: 5000,
  thresholds,
  expectedMirrorRatio: 1,
  feedbackSecret: "",
  retentionMs: 168 * HOUR,
};
const service = new ShadowMetricsService({
  store,
  engine: createAggregateEngine(store),
  options: serviceOptions,
  now: () => nowMs,
});
const stormStarted = performance.now();
const storm = Array.from({ length: 60 }, (_, i) =>
  service.report(HOUR - i * 61_000 - 1000).then(
    () => "ok",
    (error: Error) => error.message,
  ),
);
const gauge: number[] = [];
const gaugeLoop = (async () => {
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    await service.report(HOUR, 0, { priority: true });
    gauge.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
})();
const outcomes = await Promise.all(storm);
await gaugeLoop;
const stormMs = performance.now() - stormStarted;
const failed = outcomes.filter((o) => o !== "ok");
console.log(
  `report storm (60 distinct windows over ${filled} pairs): all answered in ${stormMs.toFixed(0)} ms, ` +
    `${failed.length} failed${failed.length ? ` (${failed[0]})` : ""}; gauges' report during it: ` +
    `max ${Math.max(...gauge).toFixed(1)} ms`,
);

// The user request rate one metrics-service supports: every request makes a primary and a shadow record (100 %
// mirroring); the report no longer limits it.
const perRequest = 2;
const at100 = ingest.recordsPerSecond / perRequest;
console.log(
  `supported user requests/s: ${Math.round(at100)} at 100 % report sampling, ${Math.round(at100 * 10)} at 10 %`,
);
store.close();
rmSync(dir, { recursive: true, force: true });
