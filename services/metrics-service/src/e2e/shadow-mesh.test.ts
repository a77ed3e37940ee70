import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createClient } from "@connectrpc/connect";
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
import { count, offlineLabels, TEXTS, TRUTH } from "./offline.js";

/**
 * End to end: the local mesh (model-service PRIMARY spam-v1, SHADOW spam-v2, metrics-service, app-service mirroring
 * 100 %) on free ports. Real classify calls go through app-service (Connect); the report must show one pair per call
 * and exactly the agreement computed offline by running both bundled ONNX models on the same texts; feedback moves
 * each role's accuracy to what the offline labels say; with the shadow killed, primary calls keep succeeding and
 * app-service records each failed mirrored call as the shadow's UNAVAILABLE. On a second mesh the
 * shadow is stopped (SIGSTOP) while calls go on: app-service's mirrored calls time out and reach the comparison as
 * the shadow's DEADLINE_EXCEEDED records.
 */

const JOIN_WINDOW_MS = 2000;
const MODELS = {
  primary: path.join(REPO_ROOT, "models/spam-v1"),
  shadow: path.join(REPO_ROOT, "models/spam-v2"),
};

describe("the shadow comparison on the local mesh", () => {
  let mesh: Mesh | undefined;
  /** A second mesh (3 s deadline) whose shadow gets SIGSTOPped. */
  let hung: Mesh | undefined;
  const dirs: string[] = [];
  const problems: string[] = [];
  let primaryLabels: string[] = [];
  let shadowLabels: string[] = [];

  beforeAll(async () => {
    primaryLabels = await offlineLabels(MODELS.primary, TEXTS);
    shadowLabels = await offlineLabels(MODELS.shadow, TEXTS);
    // Imported at run time from the repository (it lives outside this workspace), typed by the module itself.
    const meshModule: typeof import("../../../../scripts/lib/mesh.js") = await import(
      pathToFileURL(path.join(REPO_ROOT, "scripts/lib/mesh.ts")).href
    );
    const dataDir = mkdtempSync(path.join(tmpdir(), "shadow-e2e-data-"));
    const logDir = mkdtempSync(path.join(tmpdir(), "shadow-e2e-logs-"));
    dirs.push(dataDir, logDir);
    mesh = await meshModule.startMesh({
      ports: "free",
      dataDir,
      logDir,
      mirrorPercent: 100,
      env: {
        METRICS_SERVICE_JOIN_WINDOW_MS: String(JOIN_WINDOW_MS),
        METRICS_SERVICE_VERDICT_MIN_PAIRS: "10",
        METRICS_SERVICE_VERDICT_MIN_FEEDBACK: "10",
      },
      onLogLine: (service, line) => problems.push(`${service}: ${line}`),
    });
    const hungData = mkdtempSync(path.join(tmpdir(), "shadow-e2e-hung-data-"));
    const hungLogs = mkdtempSync(path.join(tmpdir(), "shadow-e2e-hung-logs-"));
    dirs.push(hungData, hungLogs);
    hung = await meshModule.startMesh({
      ports: "free",
      dataDir: hungData,
      logDir: hungLogs,
      mirrorPercent: 100,
      // A mirror record is stamped when the mirrored call ends (here: at the 3 s deadline), so the join window
      // must be longer than app-service's deadline; the default (60 s) is.
      env: { APP_SERVICE_DEADLINE_MS: "3000" },
    });
  });

  afterAll(async () => {
    await hung?.stop();
    await mesh?.stop();
    for (const dir of dirs) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports one pair per call, the offline agreement, feedback accuracy per role, and a killed shadow's failures", async () => {
    if (!mesh) {
      throw new Error("the mesh did not start");
    }
    const transport = createConnectTransport({
      baseUrl: `http://127.0.0.1:${mesh.ports.app}`,
      httpVersion: "1.1",
    });
    const predict = createClient(PredictService, transport);
    const metrics = createClient(MetricsService, transport);

    /** Polls the report (through app-service) until `done` holds, for at most 30 s; never a timed assertion. */
    function reportWhen(done: (report: ShadowReport) => boolean): Promise<ShadowReport> {
      return vi.waitFor(
        async () => {
          const { report } = await metrics.getShadowReport({ maxDisagreements: 100 });
          if (!report || !done(report)) {
            throw new Error(
              `the report never got there; last: ${JSON.stringify(report?.totals, (_, v) => (typeof v === "bigint" ? Number(v) : v))}\n${problems.join("\n")}`,
            );
          }
          return report;
        },
        { timeout: 30_000, interval: 100 },
      );
    }

    // N real classify calls through app-service, mirrored to the shadow by app-service. Each carries the caller's
    // own x-request-id, reused on purpose: app-service makes a fresh join key per call anyway.
    const requestIds: string[] = [];
    const tokens: string[] = [];
    for (const [i, text] of TEXTS.entries()) {
      const { prediction } = await predict.predict(
        { text },
        { headers: { "x-request-id": "reused-by-caller" } },
      );
      expect(prediction?.label).toBe(primaryLabels[i]);
      expect(prediction?.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
      expect(prediction?.clientRequestId).toBe("reused-by-caller");
      expect(prediction?.feedbackToken).toMatch(/^[\w-]{43}$/);
      requestIds.push(prediction?.requestId ?? "");
      tokens.push(prediction?.feedbackToken ?? "");
    }
    expect(new Set(requestIds).size).toBe(TEXTS.length);
    const n = BigInt(TEXTS.length);
    const agreeing = count(primaryLabels.map((label, i) => label === shadowLabels[i]));
    // The texts are chosen so that the two models disagree on some: the comparison must not be trivial.
    expect(agreeing).toBeGreaterThan(0);
    expect(agreeing).toBeLessThan(TEXTS.length);

    const paired = await reportWhen((r) => r.totals?.pairCount === n && r.totals.pendingCount === 0n);
    expect(paired.totals?.requestCount).toBe(n);
    expect(paired.totals?.unmatchedPrimaryCount).toBe(0n);
    expect(paired.totals?.unmatchedShadowCount).toBe(0n);
    expect(paired.totals?.mirrorRatio).toBe(1);
    expect(paired.agreement?.pairCount).toBe(n);
    expect(paired.agreement?.agreeingCount).toBe(BigInt(agreeing));
    expect(paired.agreement?.rate).toBeCloseTo(agreeing / TEXTS.length, 12);
    const flips = new Map<string, number>();
    primaryLabels.forEach((label, i) => {
      const key = `${label}→${shadowLabels[i]}`;
      flips.set(key, (flips.get(key) ?? 0) + 1);
    });
    expect(
      Object.fromEntries(
        paired.labelFlips.map((f) => [`${f.primaryLabel}→${f.shadowLabel}`, Number(f.count)]),
      ),
    ).toEqual(Object.fromEntries(flips));
    expect(paired.recentDisagreements).toHaveLength(TEXTS.length - agreeing);
    expect(paired.primary?.models.map((m) => m.name)).toHaveLength(1);
    expect(paired.shadow?.errorCount).toBe(0n);
    expect(paired.primary?.feedbackCount).toBe(0n);

    // Feedback (the label a person would give), with the token that came with each prediction, moves both roles'
    // accuracy, the shadow's too.
    for (const [i, requestId] of requestIds.entries()) {
      const { requestKnown } = await metrics.submitFeedback({
        requestId,
        batchIndex: 0,
        label: TRUTH[i],
        feedbackToken: tokens[i],
      });
      expect(requestKnown).toBe(true);
    }
    const primaryCorrect = count(primaryLabels.map((label, i) => label === TRUTH[i]));
    const shadowCorrect = count(shadowLabels.map((label, i) => label === TRUTH[i]));
    const labelled = await reportWhen((r) => r.primary?.feedbackCount === n);
    expect(labelled.primary?.correctCount).toBe(BigInt(primaryCorrect));
    expect(labelled.shadow?.feedbackCount).toBe(n);
    expect(labelled.shadow?.correctCount).toBe(BigInt(shadowCorrect));
    expect(labelled.primary?.accuracy).toBeCloseTo(primaryCorrect / TEXTS.length, 12);
    expect(labelled.shadow?.accuracy).toBeCloseTo(shadowCorrect / TEXTS.length, 12);

    // The shadow dies: users see no errors, and app-service records each mirrored call that failed as the
    // shadow's UNAVAILABLE (source MIRROR), so the comparison sees the failures instead of a healthy-looking gap.
    await mesh.kill("shadow", "SIGKILL");
    const after = TEXTS.slice(0, 10);
    const results = await Promise.allSettled(after.map((text) => predict.predict({ text })));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const lost = BigInt(after.length);
    const unavailable = (r: ShadowReport) =>
      r.errors.find((e) => e.role === Role.SHADOW && e.grpcStatusCode === 14)?.count ?? 0n;
    const failed = await reportWhen((r) => unavailable(r) === lost && r.totals?.pendingCount === 0n);
    expect(failed.totals?.pairCount).toBe(n + lost);
    expect(failed.totals?.unmatchedPrimaryCount).toBe(0n);
    expect(failed.totals?.primaryRecordCount).toBe(n + lost);
    expect(failed.primary?.errorCount).toBe(0n);
    expect(failed.shadow?.errorCount).toBe(lost);
  }, 120_000);

  it("records the calls mirrored to a hung (SIGSTOPped) shadow as the shadow's DEADLINE_EXCEEDED", async () => {
    if (!hung) {
      throw new Error("the second mesh did not start");
    }
    const transport = createConnectTransport({
      baseUrl: `http://127.0.0.1:${hung.ports.app}`,
      httpVersion: "1.1",
    });
    const predict = createClient(PredictService, transport);
    const metrics = createClient(MetricsService, transport);
    const shadow = hung.processes.get("shadow");
    if (!shadow) {
      throw new Error("no shadow process");
    }
    // One call while the shadow still answers (it loads lazily), then the shadow hangs.
    await predict.predict({ text: TEXTS[0] as string });
    await vi.waitFor(
      async () => {
        expect((await metrics.getShadowReport({})).report?.totals?.pairCount).toBe(1n);
      },
      { timeout: 30_000, interval: 100 },
    );
    shadow.kill("SIGSTOP");
    const calls = 5;
    try {
      for (let i = 0; i < calls; i++) {
        const { prediction } = await predict.predict({ text: TEXTS[i] as string });
        expect(prediction?.label).toBe(primaryLabels[i]);
      }
      const timeouts = (r: ShadowReport) =>
        r.errors.find((e) => e.role === Role.SHADOW && e.grpcStatusCode === 4)?.count ?? 0n;
      await vi.waitFor(
        async () => {
          const report = (await metrics.getShadowReport({})).report;
          const seen = JSON.stringify({ totals: report?.totals, errors: report?.errors }, (_, v) =>
            typeof v === "bigint" ? Number(v) : v,
          );
          expect(report && timeouts(report), seen).toBe(BigInt(calls));
          expect(report?.totals?.pairCount, seen).toBe(BigInt(calls + 1));
          expect(report?.shadow?.errorCount, seen).toBe(BigInt(calls));
        },
        { timeout: 30_000, interval: 100 },
      );
    } finally {
      shadow.kill("SIGCONT");
    }
  }, 120_000);
});
