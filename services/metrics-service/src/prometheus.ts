import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  Decision,
  DecisionSchema,
  type Role,
  RoleSchema,
  type ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { Counter, Gauge, type Registry } from "prom-client";
import type { ShadowServiceObserver } from "./metrics-service.js";

/**
 * metrics-service's Prometheus metrics. The comparison gauges are refreshed from the same report code as the API
 * (over the default report window) when Prometheus scrapes, so /metrics and GetShadowReport never disagree, and a
 * rollout controller (Argo Rollouts, Flagger) can gate on `shadowmesh_verdict{candidate="spam-v2",decision="PROMOTE"}
 * == 1`. Every comparison gauge has a `candidate` label: one series per candidate in the window (without the label
 * when there is none: the primary's numbers alone).
 */

/** A role's label value: its name in the generated enum, in lower case ("primary", "shadow", "unspecified"). */
export function roleName(role: Role): string {
  return (RoleSchema.values.find((v) => v.number === role)?.localName ?? "unspecified").toLowerCase();
}

/** The verdict gauge's `decision` values: every Decision but UNSPECIFIED, by its name in the generated enum. */
export const DECISION_NAMES: readonly (readonly [Decision, string])[] = DecisionSchema.values
  .filter((v) => v.number !== Decision.UNSPECIFIED)
  .map((v) => [v.number as Decision, v.localName] as const);

export interface ShadowMetrics extends ShadowServiceObserver {
  retention(deleted: { records: number; feedback: number }): void;
}

export interface ShadowMetricsOptions {
  registry: Registry;
  /**
   * Computes the reports the gauges show (the default window, ending now): one per candidate
   * (`ShadowMetricsService.gaugeReports`), each labelled with its `candidate`.
   */
  reports?: () => Promise<readonly ShadowReport[]>;
  /** One report only (a single candidate); `reports` wins when both are given. */
  report?: () => Promise<ShadowReport>;
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
    const reports =
      options.reports ??
      (() => (options.report ? options.report().then((one) => [one]) : Promise.resolve([])));
    refreshing = reports().then(update, (error: unknown) => {
      computedAt = Number.NEGATIVE_INFINITY;
      throw error;
    });
    return refreshing;
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect: refresh });
  /** A gauge of the comparison: one series per candidate (its `candidate` label), and the given labels. */
  const perCandidate = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => {
    const created = gauge<L | "candidate">(name, help, ["candidate", ...labelNames]);
    candidateGauges.push(created);
    return created;
  };
  const candidateGauges: Gauge<string>[] = [];

  const windowSeconds = gauge(
    "shadowmesh_shadow_window_seconds",
    "Length of the window the shadow gauges cover.",
  );
  const reportSeconds = gauge(
    "shadowmesh_shadow_report_duration_seconds",
    "Time the last shadow report took to compute.",
  );
  const requests = perCandidate(
    "shadowmesh_shadow_requests",
    "Distinct requests seen from either role in the window.",
  );
  const pairs = perCandidate(
    "shadowmesh_shadow_pairs",
    "Requests with both a primary and a shadow record in the window.",
  );
  const compared = perCandidate(
    "shadowmesh_shadow_compared_pairs",
    "Pairs where both calls succeeded, so their labels were compared.",
  );
  const pending = perCandidate(
    "shadowmesh_shadow_pending_records",
    "Records still inside the join window, unpaired.",
  );
  const unmatched = perCandidate(
    "shadowmesh_shadow_unmatched_records",
    "Records with no partner after the join window, by side (primary: sampled out, dropped or failed).",
    ["side"],
  );
  const mirrorRatio = perCandidate(
    "shadowmesh_shadow_mirror_ratio",
    "Shadow records divided by primary records.",
  );
  const agreement = perCandidate(
    "shadowmesh_shadow_agreement_ratio",
    "Share of compared pairs with the same label.",
  );
  const agreementLower = perCandidate(
    "shadowmesh_shadow_agreement_lower_bound_ratio",
    "Lower bound of the 95 % Wilson interval of the agreement.",
  );
  const agreementUpper = perCandidate(
    "shadowmesh_shadow_agreement_upper_bound_ratio",
    "Upper bound of the 95 % Wilson interval of the agreement.",
  );
  const flips = perCandidate(
    "shadowmesh_shadow_label_flips",
    "Compared pairs by primary label (from) and shadow label (to), agreements included.",
    ["from", "to"],
  );
  const scoreDelta = perCandidate(
    "shadowmesh_shadow_score_delta_ratio",
    "Largest per-label probability difference of compared pairs: mean, p50, p95 and max.",
    ["stat"],
  );
  const latency = perCandidate(
    "shadowmesh_shadow_latency_seconds",
    "Server-side latency of successful predictions by role and percentile (p50, p95, p99).",
    ["role", "percentile"],
  );
  const latencyRatio = perCandidate(
    "shadowmesh_shadow_latency_p99_ratio",
    "Shadow p99 latency divided by the primary's; 0 when either is unknown.",
  );
  const errorRatio = perCandidate("shadowmesh_shadow_error_ratio", "Share of a role's records that failed.", [
    "role",
  ]);
  const errors = perCandidate("shadowmesh_shadow_errors", "Failed records by role and gRPC status code.", [
    "role",
    "grpc_code",
  ]);
  const feedback = perCandidate(
    "shadowmesh_shadow_feedback",
    "A role's predictions with user feedback, by whether the label was correct.",
    ["role", "correct"],
  );
  const accuracy = perCandidate(
    "shadowmesh_shadow_accuracy_ratio",
    "A role's accuracy on feedback-labelled predictions.",
    ["role"],
  );
  const judged = perCandidate(
    "shadowmesh_shadow_judged_pairs",
    "Pairs the models are judged on: pairs minus conflicts and caller-error pairs (the verdict's base).",
  );
  const roleRecords = perCandidate(
    "shadowmesh_shadow_records",
    "Every record of a role in the window, paired or not (a total; comparison numbers come from judged pairs).",
    ["role"],
  );
  const coverageRatio = perCandidate(
    "shadowmesh_shadow_coverage_ratio",
    "Settled primary records with a shadow record, divided by the number expected at the configured mirror share.",
  );
  const expectedMirror = perCandidate(
    "shadowmesh_shadow_expected_mirror_ratio",
    "The configured share of primary requests mirrored to the candidate (METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS, else METRICS_SERVICE_EXPECTED_MIRROR_PERCENT, / 100).",
  );
  const settled = perCandidate(
    "shadowmesh_shadow_settled_primary_records",
    "Primary records past the join window (paired or unmatched): the base of the coverage.",
  );
  const silence = perCandidate(
    "shadowmesh_shadow_silence_seconds",
    "How long primary records kept arriving after the shadow's newest own record (0 when it keeps up).",
  );
  const lastRecord = perCandidate(
    "shadowmesh_shadow_last_record_timestamp_seconds",
    "Time of the newest record in the window by role (shadow: its own records, not the mirror's); absent when none.",
    ["role"],
  );
  const conflicts = perCandidate(
    "shadowmesh_shadow_conflicts",
    "Pairs whose inputs differ (a request id reused for another text): never compared.",
  );
  const callerErrors = perCandidate(
    "shadowmesh_shadow_caller_error_pairs",
    "Pairs both models refused with the same caller-caused gRPC code: never counted against a model.",
    ["grpc_code"],
  );
  const verdict = perCandidate(
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
  const feedbackRefused = new Counter({
    name: "shadowmesh_feedback_refused_total",
    help: "SubmitFeedback calls refused, by gRPC code (PERMISSION_DENIED: no valid token; INVALID_ARGUMENT: bad label or id).",
    labelNames: ["grpc_code"] as const,
    registers: [registry],
  });
  const refusedRecords = new Counter({
    name: "shadowmesh_records_refused_total",
    help: "Prediction records not stored while the rest of their batch was, by reason (too_many_candidates: SHADOW records of a new candidate beyond METRICS_SERVICE_MAX_CANDIDATES).",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  // Exported from the start (at 0), so that an alert on its increase needs no series to appear first.
  refusedRecords.inc({ reason: "too_many_candidates" }, 0);
  const retentionDeleted = new Counter({
    name: "shadowmesh_retention_deleted_total",
    help: "Rows deleted by the retention sweep, by table.",
    labelNames: ["table"] as const,
    registers: [registry],
  });

  function update(reports: readonly ShadowReport[]) {
    reportSeconds.set(options.lastReportDurationMs() / 1000);
    windowSeconds.set(options.windowMs / 1000);
    // Only the candidates of this report keep series: one that left the window disappears, never stale.
    for (const g of candidateGauges) {
      g.reset();
    }
    for (const report of reports) {
      show(report);
    }
  }

  function show(report: ShadowReport) {
    // Labels of a candidate's series; with no candidate in the window (the primary's numbers alone), none.
    const noCandidate = report.candidate === "" && (report.totals?.shadowRecordCount ?? 0n) === 0n;
    const of = () => (noCandidate ? {} : { candidate: report.candidate });
    const totals = report.totals;
    const agreementData = report.agreement;
    requests.set(of(), Number(totals?.requestCount ?? 0n));
    pairs.set(of(), Number(totals?.pairCount ?? 0n));
    compared.set(of(), Number(agreementData?.pairCount ?? 0n));
    pending.set(of(), Number(totals?.pendingCount ?? 0n));
    unmatched.set({ ...of(), side: "primary" }, Number(totals?.unmatchedPrimaryCount ?? 0n));
    unmatched.set({ ...of(), side: "shadow" }, Number(totals?.unmatchedShadowCount ?? 0n));
    mirrorRatio.set(of(), totals?.mirrorRatio ?? 0);
    agreement.set(of(), agreementData?.rate ?? 0);
    agreementLower.set(of(), agreementData?.lowerBound ?? 0);
    agreementUpper.set(of(), agreementData?.upperBound ?? 1);
    for (const flip of report.labelFlips) {
      flips.set({ ...of(), from: flip.primaryLabel, to: flip.shadowLabel }, Number(flip.count));
    }
    for (const stat of ["mean", "p50", "p95", "max"] as const) {
      scoreDelta.set({ ...of(), stat }, report.scoreDelta?.[stat] ?? 0);
    }
    latencyRatio.set(of(), report.latencyP99Ratio);
    for (const error of report.errors) {
      errors.set(
        { ...of(), role: roleName(error.role), grpc_code: String(error.grpcStatusCode) },
        Number(error.count),
      );
    }
    for (const summary of [report.primary, report.shadow]) {
      if (!summary) {
        continue;
      }
      const role = roleName(summary.role);
      latency.set({ ...of(), role, percentile: "p50" }, summary.latencyP50Ms / 1000);
      latency.set({ ...of(), role, percentile: "p95" }, summary.latencyP95Ms / 1000);
      latency.set({ ...of(), role, percentile: "p99" }, summary.latencyP99Ms / 1000);
      errorRatio.set({ ...of(), role }, summary.errorRate);
      feedback.set({ ...of(), role, correct: "true" }, Number(summary.correctCount));
      feedback.set({ ...of(), role, correct: "false" }, Number(summary.feedbackCount - summary.correctCount));
      accuracy.set({ ...of(), role }, summary.accuracy);
    }
    judged.set(of(), Number(totals?.judgedPairCount ?? 0n));
    roleRecords.set({ ...of(), role: "primary" }, Number(totals?.primaryRecordCount ?? 0n));
    roleRecords.set({ ...of(), role: "shadow" }, Number(totals?.shadowRecordCount ?? 0n));
    const coverage = report.coverage;
    coverageRatio.set(of(), coverage?.ratio ?? 0);
    expectedMirror.set(of(), coverage?.expectedRatio ?? 0);
    settled.set(of(), Number(coverage?.settledPrimaryCount ?? 0n));
    silence.set(
      of(),
      Number(coverage?.shadowSilence?.seconds ?? 0n) + (coverage?.shadowSilence?.nanos ?? 0) / 1e9,
    );
    if (coverage?.lastPrimaryTime) {
      lastRecord.set({ ...of(), role: "primary" }, timestampMs(coverage.lastPrimaryTime) / 1000);
    }
    if (coverage?.lastShadowTime) {
      lastRecord.set({ ...of(), role: "shadow" }, timestampMs(coverage.lastShadowTime) / 1000);
    }
    conflicts.set(of(), Number(totals?.conflictCount ?? 0n));
    for (const entry of report.callerErrors) {
      callerErrors.set({ ...of(), grpc_code: String(entry.grpcStatusCode) }, Number(entry.pairCount));
    }
    for (const [decision, name] of DECISION_NAMES) {
      verdict.set({ ...of(), decision: name }, report.verdict?.decision === decision ? 1 : 0);
    }
  }

  return {
    ingested(role, accepted, duplicates, replaced = 0) {
      if (accepted - replaced > 0) {
        ingested.inc({ role: roleName(role), outcome: "accepted" }, accepted - replaced);
      }
      if (replaced > 0) {
        ingested.inc({ role: roleName(role), outcome: "replaced" }, replaced);
      }
      if (duplicates > 0) {
        ingested.inc({ role: roleName(role), outcome: "duplicate" }, duplicates);
      }
    },
    feedback(requestKnown) {
      feedbackSubmitted.inc({ request_known: String(requestKnown) });
    },
    feedbackRefused(code) {
      feedbackRefused.inc({ grpc_code: String(code) });
    },
    refused(reason, records) {
      refusedRecords.inc({ reason }, records);
    },
    retention(deleted) {
      retentionDeleted.inc({ table: "records" }, deleted.records);
      retentionDeleted.inc({ table: "feedback" }, deleted.feedback);
    },
  };
}
