import {
  Decision,
  Role,
  type ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { Counter, Gauge, type Registry } from "prom-client";
import type { ShadowServiceObserver } from "./metrics-service.js";
import type { RoleNumber } from "./store.js";

/**
 * metrics-service's Prometheus metrics. The comparison gauges are refreshed from the same report code as the API
 * (over the default report window) when Prometheus scrapes, so /metrics and GetShadowReport never disagree, and a
 * rollout controller (Argo Rollouts, Flagger) can gate on `shadowmesh_verdict{decision="PROMOTE"} == 1`.
 */

const ROLE_NAME: Record<RoleNumber, string> = { 1: "primary", 2: "shadow" };
const DECISIONS: [Decision, string][] = [
  [Decision.INSUFFICIENT_DATA, "INSUFFICIENT_DATA"],
  [Decision.PROMOTE, "PROMOTE"],
  [Decision.HOLD, "HOLD"],
  [Decision.ROLLBACK, "ROLLBACK"],
];

function roleName(role: Role): string {
  return role === Role.PRIMARY ? "primary" : role === Role.SHADOW ? "shadow" : "unspecified";
}

export interface ShadowMetrics extends ShadowServiceObserver {
  retention(deleted: { records: number; feedback: number }): void;
}

export interface ShadowMetricsOptions {
  registry: Registry;
  /** Computes the report the gauges show (the default window, ending now). */
  report: () => Promise<ShadowReport>;
  /** How long the last report took to compute, in ms. */
  lastReportDurationMs: () => number;
  /** The window of that report, exported as a gauge so dashboards can say what they show. */
  windowMs: number;
  /** Reuse a report computed less than this long ago (several gauges are collected per scrape). */
  cacheMs?: number;
}

export function createShadowMetrics(options: ShadowMetricsOptions): ShadowMetrics {
  const { registry } = options;
  const cacheMs = options.cacheMs ?? 1000;
  let computedAt = Number.NEGATIVE_INFINITY;
  let refreshing: Promise<void> | undefined;
  // Every gauge's collect() calls this; one report serves all the gauges of a scrape.
  const refresh = (): Promise<void> => {
    const now = performance.now();
    if (refreshing && now - computedAt < cacheMs) {
      return refreshing;
    }
    computedAt = now;
    refreshing = options.report().then(update, (error: unknown) => {
      computedAt = Number.NEGATIVE_INFINITY;
      throw error;
    });
    return refreshing;
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect: refresh });

  const windowSeconds = gauge(
    "shadowmesh_shadow_window_seconds",
    "Length of the window the shadow gauges cover.",
  );
  const reportSeconds = gauge(
    "shadowmesh_shadow_report_duration_seconds",
    "Time the last shadow report took to compute.",
  );
  const requests = gauge(
    "shadowmesh_shadow_requests",
    "Distinct requests seen from either role in the window.",
  );
  const pairs = gauge(
    "shadowmesh_shadow_pairs",
    "Requests with both a primary and a shadow record in the window.",
  );
  const compared = gauge(
    "shadowmesh_shadow_compared_pairs",
    "Pairs where both calls succeeded, so their labels were compared.",
  );
  const pending = gauge(
    "shadowmesh_shadow_pending_records",
    "Records still inside the join window, unpaired.",
  );
  const unmatched = gauge(
    "shadowmesh_shadow_unmatched_records",
    "Records with no partner after the join window, by side (primary: sampled out, dropped or failed).",
    ["side"],
  );
  const mirrorRatio = gauge("shadowmesh_shadow_mirror_ratio", "Shadow records divided by primary records.");
  const agreement = gauge(
    "shadowmesh_shadow_agreement_ratio",
    "Share of compared pairs with the same label.",
  );
  const agreementLower = gauge(
    "shadowmesh_shadow_agreement_lower_bound_ratio",
    "Lower bound of the 95 % Wilson interval of the agreement.",
  );
  const agreementUpper = gauge(
    "shadowmesh_shadow_agreement_upper_bound_ratio",
    "Upper bound of the 95 % Wilson interval of the agreement.",
  );
  const flips = gauge(
    "shadowmesh_shadow_label_flips",
    "Compared pairs by primary label (from) and shadow label (to), agreements included.",
    ["from", "to"],
  );
  const scoreDelta = gauge(
    "shadowmesh_shadow_score_delta_ratio",
    "Largest per-label probability difference of compared pairs: mean, p50, p95 and max.",
    ["stat"],
  );
  const latency = gauge(
    "shadowmesh_shadow_latency_seconds",
    "Server-side latency of successful predictions by role and percentile (p50, p95, p99).",
    ["role", "percentile"],
  );
  const latencyRatio = gauge(
    "shadowmesh_shadow_latency_p99_ratio",
    "Shadow p99 latency divided by the primary's; 0 when either is unknown.",
  );
  const errorRatio = gauge("shadowmesh_shadow_error_ratio", "Share of a role's records that failed.", [
    "role",
  ]);
  const errors = gauge("shadowmesh_shadow_errors", "Failed records by role and gRPC status code.", [
    "role",
    "grpc_code",
  ]);
  const feedback = gauge(
    "shadowmesh_shadow_feedback",
    "A role's predictions with user feedback, by whether the label was correct.",
    ["role", "correct"],
  );
  const accuracy = gauge(
    "shadowmesh_shadow_accuracy_ratio",
    "A role's accuracy on feedback-labelled predictions.",
    ["role"],
  );
  const verdict = gauge(
    "shadowmesh_verdict",
    "The current verdict on the shadow model: 1 for the decision in force, 0 for the others.",
    ["decision"],
  );

  const ingested = new Counter({
    name: "shadowmesh_records_ingested_total",
    help: "Prediction records received, by role and outcome (accepted, or duplicate of a stored one).",
    labelNames: ["role", "outcome"] as const,
    registers: [registry],
  });
  const feedbackSubmitted = new Counter({
    name: "shadowmesh_feedback_submitted_total",
    help: "Feedback submissions, by whether predictions for the request were known.",
    labelNames: ["request_known"] as const,
    registers: [registry],
  });
  const retentionDeleted = new Counter({
    name: "shadowmesh_retention_deleted_total",
    help: "Rows deleted by the retention sweep, by table.",
    labelNames: ["table"] as const,
    registers: [registry],
  });

  function update(report: ShadowReport) {
    reportSeconds.set(options.lastReportDurationMs() / 1000);
    const totals = report.totals;
    const agreementData = report.agreement;
    windowSeconds.set(options.windowMs / 1000);
    requests.set(Number(totals?.requestCount ?? 0n));
    pairs.set(Number(totals?.pairCount ?? 0n));
    compared.set(Number(agreementData?.pairCount ?? 0n));
    pending.set(Number(totals?.pendingCount ?? 0n));
    unmatched.set({ side: "primary" }, Number(totals?.unmatchedPrimaryCount ?? 0n));
    unmatched.set({ side: "shadow" }, Number(totals?.unmatchedShadowCount ?? 0n));
    mirrorRatio.set(totals?.mirrorRatio ?? 0);
    agreement.set(agreementData?.rate ?? 0);
    agreementLower.set(agreementData?.lowerBound ?? 0);
    agreementUpper.set(agreementData?.upperBound ?? 1);
    flips.reset();
    for (const flip of report.labelFlips) {
      flips.set({ from: flip.primaryLabel, to: flip.shadowLabel }, Number(flip.count));
    }
    for (const stat of ["mean", "p50", "p95", "max"] as const) {
      scoreDelta.set({ stat }, report.scoreDelta?.[stat] ?? 0);
    }
    latencyRatio.set(report.latencyP99Ratio);
    errors.reset();
    for (const error of report.errors) {
      errors.set(
        { role: roleName(error.role), grpc_code: String(error.grpcStatusCode) },
        Number(error.count),
      );
    }
    for (const summary of [report.primary, report.shadow]) {
      if (!summary) {
        continue;
      }
      const role = roleName(summary.role);
      latency.set({ role, percentile: "p50" }, summary.latencyP50Ms / 1000);
      latency.set({ role, percentile: "p95" }, summary.latencyP95Ms / 1000);
      latency.set({ role, percentile: "p99" }, summary.latencyP99Ms / 1000);
      errorRatio.set({ role }, summary.errorRate);
      feedback.set({ role, correct: "true" }, Number(summary.correctCount));
      feedback.set({ role, correct: "false" }, Number(summary.feedbackCount - summary.correctCount));
      accuracy.set({ role }, summary.accuracy);
    }
    for (const [decision, name] of DECISIONS) {
      verdict.set({ decision: name }, report.verdict?.decision === decision ? 1 : 0);
    }
  }

  return {
    ingested(role, accepted, duplicates) {
      if (accepted > 0) {
        ingested.inc({ role: ROLE_NAME[role], outcome: "accepted" }, accepted);
      }
      if (duplicates > 0) {
        ingested.inc({ role: ROLE_NAME[role], outcome: "duplicate" }, duplicates);
      }
    },
    feedback(requestKnown) {
      feedbackSubmitted.inc({ request_known: String(requestKnown) });
    },
    retention(deleted) {
      retentionDeleted.inc({ table: "records" }, deleted.records);
      retentionDeleted.inc({ table: "feedback" }, deleted.feedback);
    },
  };
}
