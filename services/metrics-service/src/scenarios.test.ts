import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CheckOutcome, Decision } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { readConfig } from "./config.js";
import { buildReport, queryStartMs, type ReportOptions } from "./report.js";
import { serviceOptionsOf } from "./server.js";
import { ShadowStore } from "./store.js";
import { startTestServer, type TestServer } from "./testing/harness.js";
import { type RecordSpec, sha256Of, stored, wire } from "./testing/records.js";
import { falsePromote, falseRollback } from "./testing/scenarios.js";

/**
 * Issue 10's two scenarios, with the default settings: once at the report level (records stored as ingest stores
 * them, the report built from the store) and once through the real gRPC service.
 */

const NOW = 1_800_000_000_000;

function defaults(nowMs: number): ReportOptions {
  const service = serviceOptionsOf(readConfig({}));
  return {
    nowMs,
    windowMs: service.defaultWindowMs,
    joinWindowMs: service.joinWindowMs,
    maxDisagreements: service.defaultMaxDisagreements,
    includeText: false,
    expectedMirrorRatio: service.expectedMirrorRatio,
    thresholds: service.thresholds,
  };
}

function reportOf(specs: RecordSpec[], nowMs = NOW) {
  const dir = mkdtempSync(path.join(tmpdir(), "shadow-scenario-"));
  const store = new ShadowStore({ dataDir: dir });
  try {
    store.insertRecords(specs.map(stored));
    const options = defaults(nowMs);
    return buildReport(store.reportRows(queryStartMs(options)), options, (id, i, c) =>
      store.details(id, i, c),
    );
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const checkOf = (report: ReturnType<typeof reportOf>, name: string) =>
  report.verdict?.checks.find((c) => c.name === name);

describe("issue 10: false PROMOTE (750 calls, shadow killed, 750 more)", () => {
  it("does not promote a shadow that answered half the traffic, and coverage says why", () => {
    const report = reportOf(falsePromote(NOW - 20 * 60_000));
    expect(report.totals?.mirrorRatio).toBe(0.5);
    expect(report.totals?.unmatchedPrimaryCount).toBe(750n);
    expect(report.verdict?.decision).toBe(Decision.HOLD);
    expect(report.coverage?.settledPrimaryCount).toBe(1500n);
    expect(report.coverage?.mirroredPrimaryCount).toBe(750n);
    expect(report.coverage?.ratio).toBe(0.5);
    const coverage = checkOf(report, "coverage");
    expect(coverage?.outcome).toBe(CheckOutcome.WARN);
    expect(coverage?.message).toMatch(/50\.0 %.*750 of the 1500/);
    expect(report.verdict?.reasons.join(" ")).toMatch(/coverage/i);
    // The shadow's records stopped while the primary's kept coming for 150 s.
    expect(checkOf(report, "shadow_silence")?.outcome).toBe(CheckOutcome.WARN);
  });

  it("compares latency and errors on the 750 pairs only", () => {
    const report = reportOf(falsePromote(NOW - 20 * 60_000));
    expect(report.primary?.recordCount).toBe(750n);
    expect(report.primary?.allRecordCount).toBe(1500n);
    expect(report.shadow?.recordCount).toBe(750n);
    expect(report.totals?.primaryRecordCount).toBe(1500n);
  });

  it("promotes the same shadow when it stays alive for all 1500 calls", () => {
    const alive = falsePromote(NOW - 20 * 60_000).map((r) => r);
    const shadowLess = alive.filter((r) => r.role === "primary" && Number(r.requestId.slice(3)) >= 750);
    const revived = shadowLess.map((r) => ({ ...r, role: "shadow" as const, timeMs: r.timeMs + 3 }));
    const report = reportOf([...alive, ...revived]);
    expect(report.coverage?.ratio).toBe(1);
    expect(report.verdict?.decision).toBe(Decision.PROMOTE);
  });
});

describe("issue 10: false ROLLBACK (150 good, 10 caller errors on both, shadow dies, 300 more)", () => {
  it("does not roll back on error rate, and shows the caller errors apart", () => {
    const report = reportOf(falseRollback(NOW - 20 * 60_000));
    expect(report.verdict?.decision).not.toBe(Decision.ROLLBACK);
    const errors = checkOf(report, "shadow_error_rate");
    expect(errors?.outcome).toBe(CheckOutcome.PASS);
    expect(errors?.observed).toBe(0);
    expect(report.shadow?.errorCount).toBe(0n);
    expect(report.primary?.errorCount).toBe(0n);
    expect(report.errors).toEqual([]);
    expect(report.totals?.callerErrorPairCount).toBe(10n);
    expect(report.callerErrors.map((e) => [e.grpcStatusCode, e.pairCount])).toEqual([[3, 10n]]);
    // The shadow died: it cannot be promoted either, and the report says why.
    expect(report.verdict?.decision).toBe(Decision.HOLD);
    expect(checkOf(report, "coverage")?.outcome).toBe(CheckOutcome.WARN);
    // Every record stays visible as a total.
    expect(report.primary?.allRecordCount).toBe(460n);
    expect(report.primary?.allErrorCount).toBe(10n);
  });
});

describe("issue 10 scenarios through the gRPC service", () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  /** Sends the records as the two model-services would: each its own batches of up to 200. */
  async function ingest(server: TestServer, specs: RecordSpec[]) {
    for (const role of ["primary", "shadow"] as const) {
      const mine = specs.filter((r) => r.role === role).map(wire);
      for (let i = 0; i < mine.length; i += 200) {
        await server.client.reportPredictions({ records: mine.slice(i, i + 200) });
      }
    }
  }

  it("false PROMOTE: HOLD, with coverage and the shadow's silence as reasons", async () => {
    const server = await startTestServer({}, () => NOW);
    servers.push(server);
    await ingest(server, falsePromote(NOW - 20 * 60_000));
    const { report } = await server.client.getShadowReport({});
    expect(report?.verdict?.decision).toBe(Decision.HOLD);
    expect(report?.coverage?.ratio).toBe(0.5);
    expect(report?.verdict?.reasons.some((r) => /coverage/i.test(r))).toBe(true);
    expect(report?.verdict?.reasons.some((r) => /stopped|silent/i.test(r))).toBe(true);
    const metrics = await server.registry.metrics();
    expect(metrics).toMatch(/^shadowmesh_verdict\{[^}]*decision="PROMOTE"[^}]*\} 0$/m);
    expect(metrics).toMatch(/^shadowmesh_shadow_coverage_ratio\{[^}]*\} 0\.5$/m);
  });

  it("false ROLLBACK: not ROLLBACK, caller errors apart in the report and on /metrics", async () => {
    const server = await startTestServer({}, () => NOW);
    servers.push(server);
    await ingest(server, falseRollback(NOW - 20 * 60_000));
    const { report } = await server.client.getShadowReport({});
    expect(report?.verdict?.decision).toBe(Decision.HOLD);
    expect(report?.shadow?.errorRate).toBe(0);
    expect(report?.callerErrors.map((e) => [e.grpcStatusCode, e.pairCount])).toEqual([[3, 10n]]);
    const metrics = await server.registry.metrics();
    expect(metrics).toMatch(/^shadowmesh_verdict\{[^}]*decision="ROLLBACK"[^}]*\} 0$/m);
    expect(metrics).toMatch(/^shadowmesh_shadow_caller_error_pairs\{[^}]*grpc_code="3"[^}]*\} 10$/m);
  });
});

describe("a caller that gives up on the primary", () => {
  it("is a caller error: CANCELLED on the primary never counts against it, nor for the shadow", () => {
    const base = NOW - 20 * 60_000;
    const records: RecordSpec[] = [];
    for (let i = 0; i < 200; i++) {
      const text = `message ${i}`;
      const sha256 = sha256Of(text);
      const cancelled = i % 10 === 0;
      records.push(
        {
          requestId: `c-${i}`,
          role: "primary",
          timeMs: base + i * 200,
          sha256,
          ...(cancelled ? { code: 1 } : { label: "ham" }),
        },
        { requestId: `c-${i}`, role: "shadow", timeMs: base + i * 200 + 3, sha256, label: "ham" },
      );
    }
    const report = reportOf(records);
    expect(report.primary?.errorCount).toBe(0n);
    expect(report.errors).toEqual([]);
    expect(report.totals?.callerErrorPairCount).toBe(20n);
    expect(report.callerErrors.map((e) => [e.grpcStatusCode, e.pairCount])).toEqual([[1, 20n]]);
    expect(report.totals?.judgedPairCount).toBe(180n);
    expect(report.verdict?.decision).toBe(Decision.PROMOTE);
  });
});
