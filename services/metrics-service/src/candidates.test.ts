import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError } from "@shadowmesh/common";
import {
  CheckOutcome,
  Decision,
  ReportPredictionsRequestSchema,
  type ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_CANDIDATE_LENGTH, parseMirrorPercents } from "./candidates.js";
import { readConfig } from "./config.js";
import { ShadowMetricsService } from "./metrics-service.js";
import { createShadowMetrics } from "./prometheus.js";
import { serviceOptionsOf } from "./server.js";
import { ShadowStore } from "./store.js";
import { startTestServer, type TestServer } from "./testing/harness.js";
import { type RecordSpec, wire } from "./testing/records.js";
import { twoCandidates } from "./testing/scenarios.js";

/**
 * Several candidates (issue 15): each shadow model is joined with the primary on its own and has its own report,
 * verdict and gauges; old clients that ask for "the" report get the only candidate or FAILED_PRECONDITION.
 */

const NOW = 1_800_000_000_000;
const servers: TestServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function start(now: () => number, env: Record<string, string> = {}) {
  const server = await startTestServer(env, now);
  servers.push(server);
  return server;
}

/** Sends the records as the model-services would: each service (primary, each candidate) its own batches. */
async function ingest(server: TestServer, specs: RecordSpec[]) {
  const senders = new Map<string, RecordSpec[]>();
  for (const spec of specs) {
    const sender = spec.role === "primary" ? "" : (spec.candidate ?? "spam");
    senders.set(sender, [...(senders.get(sender) ?? []), spec]);
  }
  for (const mine of senders.values()) {
    for (let i = 0; i < mine.length; i += 200) {
      await server.client.reportPredictions({ records: mine.slice(i, i + 200).map(wire) });
    }
  }
}

async function failure(promise: Promise<unknown>): Promise<ConnectError | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return ConnectError.from(error);
  }
}

const checkOf = (report: ShadowReport | undefined, name: string) =>
  report?.verdict?.checks.find((c) => c.name === name);

describe("METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS", () => {
  it("parses name=percent pairs into shares, unicode names and spaces included", () => {
    expect(parseMirrorPercents("")).toEqual(new Map());
    expect(parseMirrorPercents(" spam-v2=100, spam-lite = 50 ,ünï ☃=12.5")).toEqual(
      new Map([
        ["spam-v2", 1],
        ["spam-lite", 0.5],
        ["ünï ☃", 0.125],
      ]),
    );
    // A name may hold "=": the last one separates the percent.
    expect(parseMirrorPercents("a=b=20")).toEqual(new Map([["a=b", 0.2]]));
  });

  it.each([
    ["spam-v2", "entry 1"],
    ["=50", "must be name=percent"],
    ["spam-v2=", "percent must be a number from 0 to 100"],
    ["spam-v2=150", "percent must be a number from 0 to 100"],
    ["spam-v2=-1", "percent must be a number from 0 to 100"],
    ["spam-v2=half", "percent must be a number from 0 to 100"],
    ["spam-v2=10,spam-v2=20", "listed twice"],
    ["spam-v2=10,,x=1", "entry 2"],
    [`${"n".repeat(MAX_CANDIDATE_LENGTH + 1)}=10`, `at most ${MAX_CANDIDATE_LENGTH} characters`],
    ["bad\u0007name=10", "control characters"],
  ])("refuses %j with one readable line naming the setting", (value, message) => {
    let error: unknown;
    try {
      readConfig({ METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS");
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain("\n");
  });
});

describe("two candidates through the gRPC service", () => {
  it("gives each candidate its own report and verdict: a killed, disagreeing one HOLDs, the other PROMOTEs", async () => {
    const server = await start(() => NOW);
    await ingest(server, twoCandidates(NOW - 20 * 60_000));

    // Old clients: no candidate named while the window holds two → FAILED_PRECONDITION naming both.
    const ambiguous = await failure(server.client.getShadowReport({}));
    expect(ambiguous?.code).toBe(Code.FailedPrecondition);
    expect(ambiguous?.rawMessage).toContain('"spam-lite", "spam-v2"');

    const v2 = (await server.client.getShadowReport({ candidate: "spam-v2" })).report;
    expect(v2?.candidate).toBe("spam-v2");
    expect(v2?.totals?.pairCount).toBe(1500n);
    expect(v2?.totals?.unmatchedPrimaryCount).toBe(0n);
    expect(v2?.agreement?.rate).toBe(1);
    expect(v2?.coverage?.ratio).toBe(1);
    expect(v2?.shadow?.models.map((m) => m.name)).toEqual(["spam-v2"]);
    expect(v2?.verdict?.decision).toBe(Decision.PROMOTE);

    const lite = (await server.client.getShadowReport({ candidate: "spam-lite", maxDisagreements: 500 }))
      .report;
    expect(lite?.candidate).toBe("spam-lite");
    expect(lite?.totals?.pairCount).toBe(750n);
    expect(lite?.totals?.unmatchedPrimaryCount).toBe(750n);
    expect(lite?.agreement?.agreeingCount).toBe(562n);
    expect(lite?.recentDisagreements).toHaveLength(188);
    expect(lite?.recentDisagreements.every((d) => d.primaryLabel === "ham" && d.shadowLabel === "spam")).toBe(
      true,
    );
    expect(lite?.coverage?.ratio).toBe(0.5);
    expect(checkOf(lite, "coverage")?.outcome).toBe(CheckOutcome.WARN);
    expect(checkOf(lite, "agreement_lower_bound")?.outcome).toBe(CheckOutcome.WARN);
    expect(lite?.verdict?.decision).toBe(Decision.HOLD);
    // Its own latency (a log histogram: within 0.5 %).
    expect(Math.abs((lite?.shadow?.latencyP50Ms ?? 0) - 0.3)).toBeLessThan(0.3 * 0.006);

    // The candidate list: sorted by name, verdicts side by side, no example lists.
    const { candidates } = await server.client.listCandidates({});
    expect(candidates.map((c) => [c.candidate, c.verdict?.decision, c.totals?.pairCount])).toEqual([
      ["spam-lite", Decision.HOLD, 750n],
      ["spam-v2", Decision.PROMOTE, 1500n],
    ]);
    expect(
      candidates.every((c) => c.recentDisagreements.length === 0 && c.recentConflicts.length === 0),
    ).toBe(true);

    // An unknown candidate: the primary's records alone, no pairs, INSUFFICIENT_DATA.
    const nobody = (await server.client.getShadowReport({ candidate: "spam-v9" })).report;
    expect(nobody?.candidate).toBe("spam-v9");
    expect(nobody?.totals?.pairCount).toBe(0n);
    expect(nobody?.totals?.primaryRecordCount).toBe(1500n);
    expect(nobody?.verdict?.decision).toBe(Decision.INSUFFICIENT_DATA);
  });

  it("leaves one candidate's report exactly as it is without the other", async () => {
    const both = await start(() => NOW);
    const alone = await start(() => NOW);
    const records = twoCandidates(NOW - 20 * 60_000);
    await ingest(both, records);
    await ingest(
      alone,
      records.filter((r) => r.candidate !== "spam-lite"),
    );
    const without = (report: ShadowReport | undefined) => ({ ...report, generateTime: undefined });
    const ask = { candidate: "spam-v2", maxDisagreements: 100 };
    expect(without((await both.client.getShadowReport(ask)).report)).toEqual(
      without((await alone.client.getShadowReport(ask)).report),
    );
    // The lone candidate is "the" candidate for an old client.
    expect(without((await alone.client.getShadowReport({ maxDisagreements: 100 })).report)).toEqual(
      without((await alone.client.getShadowReport(ask)).report),
    );
  });

  it("keeps ids apart per candidate: a retried batch is duplicates, the same id from another candidate is not", async () => {
    const server = await start(() => NOW);
    const t = NOW - 5 * 60_000;
    const records: RecordSpec[] = [
      { requestId: "same", role: "primary", timeMs: t, label: "spam" },
      { requestId: "same", role: "shadow", candidate: "a", timeMs: t + 1, label: "spam" },
      { requestId: "same", role: "shadow", candidate: "b", timeMs: t + 2, label: "ham" },
    ];
    expect((await server.client.reportPredictions({ records: records.map(wire) })).acceptedCount).toBe(3);
    const retried = await server.client.reportPredictions({ records: records.map(wire) });
    expect([retried.acceptedCount, retried.duplicateCount]).toEqual([0, 3]);
    // A MIRROR record of candidate b's call replaces b's own record only.
    await server.client.reportPredictions({
      records: [
        wire({ requestId: "same", role: "shadow", candidate: "b", timeMs: t + 2, code: 4, source: "mirror" }),
      ],
    });
    const a = (await server.client.getShadowReport({ candidate: "a" })).report;
    const b = (await server.client.getShadowReport({ candidate: "b" })).report;
    expect([a?.totals?.pairCount, a?.agreement?.agreeingCount, a?.shadow?.errorCount]).toEqual([1n, 1n, 0n]);
    expect([b?.totals?.pairCount, b?.agreement?.pairCount, b?.shadow?.errorCount]).toEqual([1n, 0n, 1n]);
    expect(b?.errors.map((e) => e.grpcStatusCode)).toEqual([4]);
  });

  it("takes names nobody expected (unicode, empty) and refuses garbage as INVALID_ARGUMENT", async () => {
    const server = await start(() => NOW);
    const t = NOW - 5 * 60_000;
    const unicode = "spam-v3 ☃ ünïcode 🚀";
    await server.client.reportPredictions({
      records: [
        wire({ requestId: "u", role: "primary", timeMs: t, label: "spam" }),
        wire({ requestId: "u", role: "shadow", candidate: unicode, timeMs: t, label: "spam" }),
      ],
    });
    // The only candidate is "the" candidate; its name comes back as sent.
    expect((await server.client.getShadowReport({})).report?.candidate).toBe(unicode);
    expect((await server.client.getShadowReport({ candidate: unicode })).report?.totals?.pairCount).toBe(1n);
    // A shadow without a model name is the candidate "": listed, but only reachable as "the" candidate.
    await server.client.reportPredictions({
      records: [wire({ requestId: "u", role: "shadow", candidate: "", timeMs: t, label: "ham" })],
    });
    const { candidates } = await server.client.listCandidates({});
    expect(candidates.map((c) => [c.candidate, c.totals?.pairCount])).toEqual([
      ["", 1n],
      [unicode, 1n],
    ]);
    const longName = "x".repeat(MAX_CANDIDATE_LENGTH + 1);
    for (const candidate of [longName, "tab\there", "nul\u0000"]) {
      expect((await failure(server.client.getShadowReport({ candidate })))?.code).toBe(Code.InvalidArgument);
      const refused = await failure(
        server.client.reportPredictions({
          records: [wire({ requestId: "g", role: "shadow", candidate, timeMs: t, label: "ham" })],
        }),
      );
      expect(refused?.code).toBe(Code.InvalidArgument);
      const stream = server.client.watchShadowReport({ candidate });
      expect(
        (
          await failure(
            (async () => {
              for await (const _ of stream) {
              }
            })(),
          )
        )?.code,
      ).toBe(Code.InvalidArgument);
    }
    expect(server.store.counts().records).toBe(3);
  });

  it("fails a watch without a candidate while the window holds several; a named one streams its report", async () => {
    const server = await start(() => NOW);
    await ingest(server, twoCandidates(NOW - 20 * 60_000).slice(0, 300));
    const ambiguous = server.client.watchShadowReport({});
    const error = await failure(
      (async () => {
        for await (const _ of ambiguous) {
          // no update is expected
        }
      })(),
    );
    expect(error?.code).toBe(Code.FailedPrecondition);
    const controller = new AbortController();
    const named = server.client.watchShadowReport({ candidate: "spam-lite" }, { signal: controller.signal });
    for await (const update of named) {
      expect(update.report?.candidate).toBe("spam-lite");
      expect(update.report?.totals?.pairCount).toBe(100n);
      break;
    }
    controller.abort();
  });
});

describe("per-candidate expected mirror share and gauges", () => {
  it("judges each candidate's coverage against its own share and labels every gauge with the candidate", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shadow-candidates-"));
    dirs.push(dir);
    const store = new ShadowStore({ dataDir: dir });
    let now = NOW;
    const config = readConfig({ METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS: "spam-lite=50" });
    // What server.ts passes the service (serviceOptionsOf plus the per-candidate shares).
    const service = new ShadowMetricsService({
      store,
      options: {
        ...serviceOptionsOf(config),
        expectedMirrorRatios: parseMirrorPercents(config.EXPECTED_MIRROR_PERCENTS),
      },
      now: () => now,
    });
    const registry = new Registry();
    createShadowMetrics({
      registry,
      reports: () => service.gaugeReports(config.REPORT_WINDOW_MS),
      lastReportDurationMs: () => service.lastReportDurationMs,
      windowMs: config.REPORT_WINDOW_MS,
    });
    try {
      // No candidate yet: the primary's numbers alone, without a candidate label.
      // (A registry of its own: a registry reuses its report for 1 s.)
      const before = new Registry();
      createShadowMetrics({
        registry: before,
        reports: () => service.gaugeReports(config.REPORT_WINDOW_MS),
        lastReportDurationMs: () => service.lastReportDurationMs,
        windowMs: config.REPORT_WINDOW_MS,
      });
      expect(await before.metrics()).toMatch(/^shadowmesh_verdict\{decision="INSUFFICIENT_DATA"\} 1$/m);
      // spam-lite answers half the traffic (the first half), as its 50 % mirror share says it should.
      const records = twoCandidates(NOW - 20 * 60_000);
      service.reportPredictions(
        create(ReportPredictionsRequestSchema, {
          records: records.filter((r) => r.role === "primary").map(wire),
        }),
      );
      for (const candidate of ["spam-v2", "spam-lite"]) {
        service.reportPredictions(
          create(ReportPredictionsRequestSchema, {
            records: records.filter((r) => r.candidate === candidate).map(wire),
          }),
        );
      }
      const lite = await service.report(config.REPORT_WINDOW_MS, 0, { candidate: "spam-lite" });
      expect(lite.coverage?.expectedRatio).toBe(0.5);
      expect(lite.coverage?.ratio).toBe(1);
      expect(checkOf(lite, "coverage")?.outcome).toBe(CheckOutcome.PASS);
      const text = await registry.metrics();
      const value = (series: string) =>
        text
          .split("\n")
          .find((l) => l.startsWith(`${series} `))
          ?.split(" ")
          .at(-1);
      expect(value('shadowmesh_shadow_expected_mirror_ratio{candidate="spam-lite"}')).toBe("0.5");
      expect(value('shadowmesh_shadow_expected_mirror_ratio{candidate="spam-v2"}')).toBe("1");
      expect(value('shadowmesh_shadow_pairs{candidate="spam-lite"}')).toBe("750");
      expect(value('shadowmesh_shadow_pairs{candidate="spam-v2"}')).toBe("1500");
      expect(value('shadowmesh_verdict{candidate="spam-v2",decision="PROMOTE"}')).toBe("1");
      expect(value('shadowmesh_verdict{candidate="spam-lite",decision="HOLD"}')).toBe("1");
      expect(text).toContain(
        'shadowmesh_shadow_latency_seconds{candidate="spam-lite",role="shadow",percentile="p99"}',
      );

      // An hour later spam-lite has left the window and only spam-v2 still answers: spam-lite's series go.
      const liteLast = Math.max(...records.filter((r) => r.candidate === "spam-lite").map((r) => r.timeMs));
      now = liteLast + config.REPORT_WINDOW_MS + 5 * 60_000;
      service.reportPredictions(
        create(ReportPredictionsRequestSchema, {
          records: [
            wire({ requestId: "later", role: "primary", timeMs: now - 1000, label: "ham" }),
            wire({
              requestId: "later",
              role: "shadow",
              candidate: "spam-v2",
              timeMs: now - 999,
              label: "ham",
            }),
          ],
        }),
      );
      await vi.waitFor(
        async () => {
          const later = await registry.metrics();
          expect(later).not.toContain('candidate="spam-lite"');
          expect(later).toContain('shadowmesh_shadow_pairs{candidate="spam-v2"}');
          // The gauges reuse a report for 1 s: poll past that.
        },
        { timeout: 15_000, interval: 250 },
      );
    } finally {
      store.close();
    }
  });
});
