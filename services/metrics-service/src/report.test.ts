import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Decision, Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { describe, expect, it } from "vitest";
import { buildReport, queryStartMs, type ReportOptions, seriesStepMs } from "./report.js";
import { scoreDelta } from "./stats.js";
import { ShadowStore } from "./store.js";
import { pair, type RecordSpec, stored } from "./testing/records.js";

const NOW = 1_800_000_000_000;
const JOIN = 60_000;
const options: ReportOptions = {
  nowMs: NOW,
  windowMs: 3_600_000,
  joinWindowMs: JOIN,
  maxDisagreements: 20,
  includeText: false,
  thresholds: {
    minPairs: 3,
    minAgreement: 0.1,
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

/** Stores the records (and their feedback) in a fresh store, as ingest would, and builds the report from it. */
function report(specs: RecordSpec[], overrides: Partial<ReportOptions> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "shadow-report-"));
  const store = new ShadowStore({ dataDir: dir });
  try {
    store.insertRecords(specs.map(stored));
    for (const spec of specs) {
      if (spec.feedback) {
        store.upsertFeedback(spec.requestId, spec.batchIndex ?? 0, spec.feedback, spec.timeMs);
      }
    }
    const all = { ...options, ...overrides };
    return buildReport(store.reportRows(queryStartMs(all)), all, (id, index, c) =>
      store.details(id, index, c),
    );
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("buildReport: the join", () => {
  it("pairs a primary and a shadow record with the same request id within the join window", () => {
    const r = report([...pair("a", NOW - 120_000), ...pair("b", NOW - 120_000, {}, {}, JOIN)]);
    expect(r.totals?.requestCount).toBe(2n);
    expect(r.totals?.pairCount).toBe(2n);
    expect(r.totals?.primaryRecordCount).toBe(2n);
    expect(r.totals?.shadowRecordCount).toBe(2n);
    expect(r.totals?.unmatchedPrimaryCount).toBe(0n);
    expect(r.totals?.pendingCount).toBe(0n);
    expect(r.totals?.mirrorRatio).toBe(1);
  });

  it("pairs by request id and batch index, not by request id alone", () => {
    const r = report([
      { requestId: "batch", batchIndex: 0, role: "primary", timeMs: NOW - 120_000 },
      { requestId: "batch", batchIndex: 1, role: "primary", timeMs: NOW - 120_000 },
      { requestId: "batch", batchIndex: 1, role: "shadow", timeMs: NOW - 120_000 },
    ]);
    expect(r.totals?.requestCount).toBe(2n);
    expect(r.totals?.pairCount).toBe(1n);
    expect(r.totals?.unmatchedPrimaryCount).toBe(1n);
  });

  it("keeps a lone record pending inside the join window and unmatched after it, by side", () => {
    const r = report([
      { requestId: "young-primary", role: "primary", timeMs: NOW - JOIN + 1 },
      { requestId: "old-primary", role: "primary", timeMs: NOW - JOIN },
      { requestId: "old-primary-2", role: "primary", timeMs: NOW - 10 * JOIN },
      { requestId: "old-shadow", role: "shadow", timeMs: NOW - 2 * JOIN },
      { requestId: "young-shadow", role: "shadow", timeMs: NOW - 1 },
    ]);
    expect(r.totals?.pendingCount).toBe(2n);
    expect(r.totals?.unmatchedPrimaryCount).toBe(2n);
    expect(r.totals?.unmatchedShadowCount).toBe(1n);
    expect(r.totals?.pairCount).toBe(0n);
    expect(r.totals?.requestCount).toBe(5n);
    expect(r.totals?.mirrorRatio).toBeCloseTo(2 / 3);
  });

  it("joins a late shadow record that arrives within the window of its primary", () => {
    const primary: RecordSpec = { requestId: "late", role: "primary", timeMs: NOW - 3 * JOIN };
    expect(report([primary]).totals?.unmatchedPrimaryCount).toBe(1n);
    const joined = report([primary, { requestId: "late", role: "shadow", timeMs: NOW - 2 * JOIN - 1 }]);
    expect(joined.totals?.pairCount).toBe(1n);
    expect(joined.totals?.unmatchedPrimaryCount).toBe(0n);
  });

  it("does not pair records further apart than the join window: both are unmatched at once", () => {
    const r = report(pair("far", NOW - 2 * JOIN, {}, {}, JOIN + 1));
    expect(r.totals?.pairCount).toBe(0n);
    expect(r.totals?.unmatchedPrimaryCount).toBe(1n);
    expect(r.totals?.unmatchedShadowCount).toBe(1n);
    expect(r.totals?.pendingCount).toBe(0n);
    expect(r.totals?.requestCount).toBe(1n);
  });

  it("places a pair in the window by its primary's time, even when the shadow's is just inside", () => {
    const start = NOW - options.windowMs;
    const outside = report(pair("edge", start - 10, {}, {}, 20));
    expect(outside.totals?.pairCount).toBe(0n);
    expect(outside.totals?.shadowRecordCount).toBe(0n);
    expect(outside.totals?.unmatchedShadowCount).toBe(0n);
    const inside = report(pair("edge", start, {}, {}, 20));
    expect(inside.totals?.pairCount).toBe(1n);
  });

  it("counts a pair whose shadow failed as a pair, and its failure as an error, but does not compare it", () => {
    const r = report([
      ...pair("ok", NOW - 120_000, { label: "spam" }, { label: "spam" }),
      ...pair("failed", NOW - 120_000, { label: "spam" }, { code: 4 }),
      ...pair("failed-2", NOW - 120_000, { label: "ham" }, { code: 14 }),
      { requestId: "lone-fail", role: "primary", timeMs: NOW - 120_000, code: 14 },
    ]);
    expect(r.totals?.pairCount).toBe(3n);
    expect(r.agreement?.pairCount).toBe(1n);
    expect(r.shadow?.errorCount).toBe(2n);
    expect(r.shadow?.errorRate).toBeCloseTo(2 / 3);
    // The comparison numbers come from the pairs; the lone failure shows only in the totals.
    expect(r.primary?.errorRate).toBe(0);
    expect(r.primary?.recordCount).toBe(3n);
    expect(r.primary?.allRecordCount).toBe(4n);
    expect(r.primary?.allErrorCount).toBe(1n);
    expect(r.primary?.allErrorRate).toBeCloseTo(1 / 4);
    expect(r.errors.map((e) => [e.role, e.grpcStatusCode, e.count])).toEqual([
      [Role.SHADOW, 4, 1n],
      [Role.SHADOW, 14, 1n],
    ]);
  });
});

describe("buildReport: the comparison", () => {
  const t = NOW - 600_000;
  const specs: RecordSpec[] = [
    ...pair("1", t, { label: "spam", spam: 0.9 }, { label: "spam", spam: 0.8 }),
    ...pair("2", t + 1, { label: "ham", spam: 0.1 }, { label: "ham", spam: 0.3 }),
    ...pair("3", t + 2, { label: "ham", spam: 0.4 }, { label: "spam", spam: 0.6, text: "win money" }),
    ...pair("4", t + 3, { label: "spam", spam: 0.7 }, { label: "ham", spam: 0.2 }),
  ];

  it("computes agreement with its Wilson interval and the label-flip matrix, agreements included", () => {
    const r = report(specs);
    expect(r.agreement?.agreeingCount).toBe(2n);
    expect(r.agreement?.pairCount).toBe(4n);
    expect(r.agreement?.rate).toBe(0.5);
    expect(r.agreement?.lowerBound).toBeCloseTo(0.15, 2);
    expect(r.agreement?.upperBound).toBeCloseTo(0.85, 2);
    expect(r.labelFlips.map((f) => [f.primaryLabel, f.shadowLabel, f.count])).toEqual([
      ["ham", "ham", 1n],
      ["ham", "spam", 1n],
      ["spam", "ham", 1n],
      ["spam", "spam", 1n],
    ]);
  });

  it("summarises the largest per-label probability difference of each pair", () => {
    const r = report(specs);
    // Deltas: 0.1, 0.2, 0.2, 0.5.
    expect(r.scoreDelta?.mean).toBeCloseTo(0.25);
    expect(r.scoreDelta?.p50).toBeCloseTo(0.2);
    expect(r.scoreDelta?.p95).toBeCloseTo(0.5);
    expect(r.scoreDelta?.max).toBeCloseTo(0.5);
    expect(scoreDelta([["a", 1]], [["b", 0.25]])).toBe(1);
  });

  it("lists the disagreements newest first, with the fingerprint and without raw text unless opted in", () => {
    const r = report(specs, { maxDisagreements: 1 });
    expect(r.recentDisagreements).toHaveLength(1);
    const [latest] = r.recentDisagreements;
    expect(latest?.requestId).toBe("4");
    expect(latest?.primaryLabel).toBe("spam");
    expect(latest?.shadowLabel).toBe("ham");
    expect(latest?.primaryProbabilities.map((p) => p.label)).toEqual(["ham", "spam"]);
    expect(latest?.input?.sha256).toBe("sha-4");
    expect(latest?.time && timestampMs(latest.time)).toBe(t + 3);
    const all = report(specs);
    expect(all.recentDisagreements.map((d) => d.requestId)).toEqual(["4", "3"]);
    expect(all.recentDisagreements[1]?.input?.text).toBe("");
    expect(report(specs, { includeText: true }).recentDisagreements[1]?.input?.text).toBe("win money");
  });

  it("computes latency percentiles per role over successful records, their ratio and a histogram", () => {
    const many: RecordSpec[] = [];
    for (let i = 1; i <= 100; i++) {
      many.push(...pair(`l${i}`, t, { latencyMs: i / 10 }, { latencyMs: i / 5 }));
    }
    many.push(...pair("slow-failure", t, { latencyMs: 1000, code: 13 }, { latencyMs: 1000, code: 13 }));
    const r = report(many);
    expect(r.primary?.latencyP50Ms).toBeCloseTo(5);
    expect(r.primary?.latencyP95Ms).toBeCloseTo(9.5);
    expect(r.primary?.latencyP99Ms).toBeCloseTo(9.9);
    expect(r.shadow?.latencyP99Ms).toBeCloseTo(19.8);
    expect(r.latencyP99Ratio).toBeCloseTo(2);
    const buckets = r.primary?.latencyBuckets ?? [];
    expect(buckets.reduce((sum, b) => sum + b.count, 0n)).toBe(100n);
    expect(buckets.find((b) => b.upperBoundMs === 0.25)?.count).toBe(2n);
    expect(buckets.at(-1)?.upperBoundMs).toBe(Number.POSITIVE_INFINITY);
  });

  it("reports accuracy per role on feedback-labelled predictions, for the shadow too", () => {
    const r = report([
      ...pair("f1", t, { label: "spam", feedback: "spam" }, { label: "spam", feedback: "spam" }),
      ...pair("f2", t, { label: "spam", feedback: "ham" }, { label: "ham", feedback: "ham" }),
      ...pair("f3", t, { label: "ham", feedback: "ham" }, { code: 14, feedback: "ham" }),
      ...pair("nf", t, { label: "ham" }, { label: "ham" }),
    ]);
    // Accuracy compares the models on the same requests: f3, which the shadow failed, is left out of both.
    expect(r.primary?.feedbackCount).toBe(2n);
    expect(r.primary?.correctCount).toBe(1n);
    expect(r.primary?.accuracy).toBe(0.5);
    expect(r.shadow?.feedbackCount).toBe(2n);
    expect(r.shadow?.correctCount).toBe(2n);
    expect(r.shadow?.accuracy).toBe(1);
    expect(r.recentDisagreements[0]?.feedbackLabel).toBe("ham");
  });

  it("lists the models each role served, newest first", () => {
    const r = report([
      ...pair("m1", t, { model: "v1" }, { model: "v2" }),
      ...pair("m2", t + 10, { model: "v1.1" }, { model: "v2" }),
    ]);
    expect(r.primary?.models.map((m) => m.version)).toEqual(["v1.1", "v1"]);
    expect(r.shadow?.models.map((m) => `${m.name}@${m.version}`)).toEqual(["spam@v2"]);
  });

  it("plots agreement over time in fixed buckets covering the whole window, oldest first", () => {
    const r = report(specs);
    const step = seriesStepMs(options.windowMs);
    expect(step).toBe(60_000);
    expect(r.agreementSeries.length).toBeGreaterThanOrEqual(60);
    expect(r.agreementSeries.length).toBeLessThanOrEqual(61);
    const times = r.agreementSeries.map((p) => (p.startTime ? timestampMs(p.startTime) : 0));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(r.agreementSeries.reduce((sum, p) => sum + p.pairCount, 0n)).toBe(4n);
    expect(r.agreementSeries.reduce((sum, p) => sum + p.agreeingCount, 0n)).toBe(2n);
  });

  it("gives a verdict from the same numbers", () => {
    expect(report(specs.slice(0, 4)).verdict?.decision).toBe(Decision.INSUFFICIENT_DATA);
    expect(report(specs).verdict?.decision).toBe(Decision.PROMOTE);
    expect(
      report(specs, { thresholds: { ...options.thresholds, minAgreement: 0.5 } }).verdict?.decision,
    ).toBe(Decision.HOLD);
  });

  it("is empty but well-formed without data", () => {
    const r = report([]);
    expect(r.totals?.requestCount).toBe(0n);
    expect(r.totals?.mirrorRatio).toBe(0);
    expect(r.agreement?.rate).toBe(0);
    expect(r.agreement?.upperBound).toBe(1);
    expect(r.latencyP99Ratio).toBe(0);
    expect(r.verdict?.decision).toBe(Decision.INSUFFICIENT_DATA);
    expect(r.startTime && timestampMs(r.startTime)).toBe(NOW - options.windowMs);
    expect(r.endTime && timestampMs(r.endTime)).toBe(NOW);
  });
});
