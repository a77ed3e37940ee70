import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  MetricsService,
  Role,
  type ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
// The launcher's own types (a project reference to scripts/): a change to startMesh breaks this file's typecheck.
import type { Mesh } from "../../../../scripts/lib/mesh.js";
import { REPO_ROOT } from "../config.js";
import { count, offlineLabels, TEXTS } from "./offline.js";

/**
 * End to end with two candidates (issue #15): the local mesh runs the primary spam-v1 and the candidates spam-v2
 * and spam-lite, app-service mirrors every call to both. Each candidate's pairs and agreement must equal what its
 * ONNX model gives offline on the same texts; a report that names no candidate is refused while there are two;
 * killing spam-lite leaves spam-v2's comparison and the primary intact, and the dead candidate's failures are its
 * own. Prometheus' view is labelled by candidate.
 */

const MODELS = {
  primary: path.join(REPO_ROOT, "models/spam-v1"),
  "spam-v2": path.join(REPO_ROOT, "models/spam-v2"),
  "spam-lite": path.join(REPO_ROOT, "models/spam-lite"),
};
const CANDIDATES = ["spam-lite", "spam-v2"] as const;
type Candidate = (typeof CANDIDATES)[number];

const json = (value: unknown) => JSON.stringify(value, (_, v) => (typeof v === "bigint" ? Number(v) : v));

describe("several candidates on the local mesh", () => {
  let mesh: Mesh | undefined;
  const dirs: string[] = [];
  const problems: string[] = [];
  const offline = {} as Record<"primary" | Candidate, string[]>;

  beforeAll(async () => {
    for (const [name, dir] of Object.entries(MODELS)) {
      offline[name as keyof typeof offline] = await offlineLabels(dir, TEXTS);
    }
    const meshModule: typeof import("../../../../scripts/lib/mesh.js") = await import(
      pathToFileURL(path.join(REPO_ROOT, "scripts/lib/mesh.ts")).href
    );
    const dataDir = mkdtempSync(path.join(tmpdir(), "candidates-e2e-data-"));
    const logDir = mkdtempSync(path.join(tmpdir(), "candidates-e2e-logs-"));
    dirs.push(dataDir, logDir);
    mesh = await meshModule.startMesh({
      ports: "free",
      dataDir,
      logDir,
      candidates: ["shadow", "lite"],
      mirrorPercent: 100,
      env: { METRICS_SERVICE_JOIN_WINDOW_MS: "2000", METRICS_SERVICE_VERDICT_MIN_PAIRS: "10" },
      onLogLine: (service, line) => problems.push(`${service}: ${line}`),
    });
  });

  afterAll(async () => {
    await mesh?.stop();
    for (const dir of dirs) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("joins each candidate with the primary, as its model does offline, and keeps one candidate's death its own", async () => {
    if (!mesh) {
      throw new Error("the mesh did not start");
    }
    const transport = createConnectTransport({
      baseUrl: `http://127.0.0.1:${mesh.ports.app}`,
      httpVersion: "1.1",
    });
    const predict = createClient(PredictService, transport);
    const metrics = createClient(MetricsService, transport);

    /** Polls ListCandidates (through app-service) until `done` holds, for at most 30 s. */
    const candidatesWhen = (done: (reports: Map<string, ShadowReport>) => boolean) =>
      vi.waitFor(
        async () => {
          const { candidates } = await metrics.listCandidates({});
          const reports = new Map(candidates.map((report) => [report.candidate, report]));
          if (!done(reports)) {
            throw new Error(
              `not yet: ${json(candidates.map((r) => [r.candidate, r.totals]))}\n${problems.join("\n")}`,
            );
          }
          return reports;
        },
        { timeout: 30_000, interval: 200 },
      );

    // The comparison must not be trivial: each candidate disagrees with the primary on some texts, and not on the
    // same ones.
    const agreeing = (candidate: Candidate, texts = TEXTS.length) =>
      count(offline.primary.slice(0, texts).map((label, i) => label === offline[candidate][i]));
    for (const candidate of CANDIDATES) {
      expect(agreeing(candidate), candidate).toBeLessThan(TEXTS.length);
      expect(agreeing(candidate), candidate).toBeGreaterThan(0);
    }

    for (const [i, text] of TEXTS.entries()) {
      const { prediction } = await predict.predict({ text });
      expect(prediction?.label).toBe(offline.primary[i]);
    }
    const n = BigInt(TEXTS.length);
    const paired = await candidatesWhen((reports) =>
      CANDIDATES.every(
        (c) => reports.get(c)?.totals?.pairCount === n && reports.get(c)?.totals?.pendingCount === 0n,
      ),
    );
    expect([...paired.keys()]).toEqual([...CANDIDATES]);
    for (const candidate of CANDIDATES) {
      const report = paired.get(candidate) as ShadowReport;
      expect(report.candidate).toBe(candidate);
      expect(report.agreement?.pairCount, candidate).toBe(n);
      expect(report.agreement?.agreeingCount, candidate).toBe(BigInt(agreeing(candidate)));
      expect(report.totals?.unmatchedPrimaryCount, candidate).toBe(0n);
      expect(report.shadow?.models.map((m) => m.name)).toEqual([candidate]);
      expect(report.shadow?.errorCount, candidate).toBe(0n);
      // The flip matrix is the candidate's own.
      const flips = new Map<string, number>();
      offline.primary.forEach((label, i) => {
        const key = `${label}→${offline[candidate][i]}`;
        flips.set(key, (flips.get(key) ?? 0) + 1);
      });
      expect(
        Object.fromEntries(
          report.labelFlips.map((f) => [`${f.primaryLabel}→${f.shadowLabel}`, Number(f.count)]),
        ),
      ).toEqual(Object.fromEntries(flips));
      // The same report through the selector, with its disagreements listed.
      const selected = (await metrics.getShadowReport({ candidate, maxDisagreements: 100 })).report;
      expect(selected?.candidate).toBe(candidate);
      expect(selected?.agreement?.agreeingCount).toBe(BigInt(agreeing(candidate)));
      expect(selected?.recentDisagreements).toHaveLength(TEXTS.length - agreeing(candidate));
    }
    // An old client that asks for "the" shadow report gets a clear refusal naming both candidates.
    const ambiguous = await metrics.getShadowReport({}).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(ambiguous?.code).toBe(Code.FailedPrecondition);
    expect(ambiguous?.rawMessage).toContain("spam-v2");
    expect(ambiguous?.rawMessage).toContain("spam-lite");

    // Prometheus sees one series per candidate.
    const exposition = await (await fetch(`http://127.0.0.1:${mesh.ports.metricsMetrics}/metrics`)).text();
    for (const candidate of CANDIDATES) {
      expect(exposition).toMatch(new RegExp(`shadowmesh_\\w+\\{[^}]*candidate="${candidate}"`));
    }

    // spam-lite dies. Users see no errors; spam-v2's comparison goes on untouched; spam-lite's failures are its own.
    await mesh.kill("lite", "SIGKILL");
    const after = TEXTS.slice(0, 10);
    const results = await Promise.allSettled(after.map((text) => predict.predict({ text })));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const k = BigInt(after.length);
    const unavailable = (report: ShadowReport | undefined) =>
      report?.errors.find((e) => e.role === Role.SHADOW && e.grpcStatusCode === Code.Unavailable)?.count ??
      0n;
    const failed = await candidatesWhen(
      (reports) =>
        unavailable(reports.get("spam-lite")) === k &&
        reports.get("spam-v2")?.totals?.pairCount === n + k &&
        [...reports.values()].every((r) => r.totals?.pendingCount === 0n),
    );
    const v2 = failed.get("spam-v2") as ShadowReport;
    expect(v2.shadow?.errorCount).toBe(0n);
    expect(v2.primary?.errorCount).toBe(0n);
    expect(v2.agreement?.agreeingCount).toBe(BigInt(agreeing("spam-v2") + agreeing("spam-v2", after.length)));
    const lite = failed.get("spam-lite") as ShadowReport;
    expect(lite.totals?.pairCount).toBe(n + k);
    expect(lite.shadow?.errorCount).toBe(k);
    expect(lite.primary?.errorCount).toBe(0n);
    // The agreement of the dead candidate is still computed on the pairs it answered.
    expect(lite.agreement?.agreeingCount).toBe(BigInt(agreeing("spam-lite")));
  }, 180_000);
});
