import type { GenEnum } from "@bufbuild/protobuf/codegenv2";
import { type Duration, type Timestamp, timestampDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { grpcCodeName } from "@shadowmesh/common";
import {
  type CheckOutcome,
  CheckOutcomeSchema,
  Decision,
  DecisionSchema,
  RoleSchema,
  type RoleSummary,
  type ShadowReport,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";

/** The shadow report as plain-text tables, for `npm run shadow:report`. */

/** A value's name in its generated enum ("PROMOTE" for DECISION_PROMOTE); the number when the enum lacks it. */
export function enumName<T extends number>(schema: GenEnum<T>, value: T): string {
  return schema.values.find((v) => v.number === value)?.localName ?? String(value);
}

/** How a check's outcome is written in the table: its enum name, but for the two shortened here. */
const OUTCOME_WORDING: Partial<Record<string, string>> = { UNSPECIFIED: "?", SKIPPED: "SKIP" };
export const outcomeWord = (outcome: CheckOutcome): string => {
  const name = enumName(CheckOutcomeSchema, outcome);
  return OUTCOME_WORDING[name] ?? name;
};

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const ms = (x: number) => `${x.toFixed(2)} ms`;
const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(3));

/** Lays rows out in columns: the first `left` columns left-aligned, the others right-aligned. */
export function table(rows: readonly (readonly string[])[], left = 1, indent = "  "): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map(
      (row) =>
        indent +
        row
          .map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
          .join("  ")
          .trimEnd(),
    )
    .join("\n");
}

/** Parses "500ms", "90s", "15m", "1h", "2d" (or a bare number of ms) into ms; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) {
    return undefined;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"] ?? 1;
  const value = Number(match[1]) * unit;
  return value > 0 ? value : undefined;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) {
    return `${ms / 3_600_000}h`;
  }
  if (ms % 60_000 === 0) {
    return `${ms / 60_000}m`;
  }
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const seconds = (d: Duration | undefined) =>
  `${((Number(d?.seconds ?? 0n) * 1000 + (d?.nanos ?? 0) / 1e6) / 1000).toFixed(1)} s`;
const when = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : "none in the window");

function roleColumn(summary: RoleSummary | undefined): string[] {
  if (!summary) {
    return ["-", "0", "0", "-", "-", "-", "-", "0", "0"];
  }
  return [
    summary.models.map((m) => `${m.name}@${m.version}`).join(", ") || "-",
    String(summary.recordCount),
    `${summary.errorCount} (${pct(summary.errorRate)})`,
    ms(summary.latencyP50Ms),
    ms(summary.latencyP95Ms),
    ms(summary.latencyP99Ms),
    summary.feedbackCount > 0n
      ? `${pct(summary.accuracy)} (${summary.correctCount}/${summary.feedbackCount})`
      : "no feedback",
    String(summary.allRecordCount),
    `${summary.allErrorCount} (${pct(summary.allErrorRate)})`,
  ];
}

export function formatReport(report: ShadowReport): string {
  const out: string[] = [];
  const start = report.startTime ? timestampDate(report.startTime).toISOString() : "?";
  const end = report.endTime ? timestampDate(report.endTime).toISOString() : "?";
  const spanMs =
    report.startTime && report.endTime ? timestampMs(report.endTime) - timestampMs(report.startTime) : 0;
  // metrics-service aligns the window's start down to the series step (so nearby reports share their buckets):
  // the window asked for is the span rounded down to that step.
  const [first, second] = report.agreementSeries;
  const stepMs =
    first?.startTime && second?.startTime ? timestampMs(second.startTime) - timestampMs(first.startTime) : 0;
  const windowMs = stepMs > 0 && spanMs > stepMs ? Math.floor(spanMs / stepMs) * stepMs : spanMs;
  const about = report.candidate === "" ? "" : ` for candidate ${JSON.stringify(report.candidate)}`;
  out.push(`Shadow report${about}, window ${formatDuration(windowMs)}: ${start} → ${end}`, "");

  const verdict = report.verdict;
  out.push(`Verdict: ${enumName(DecisionSchema, verdict?.decision ?? Decision.UNSPECIFIED)}`);
  for (const reason of verdict?.reasons ?? []) {
    out.push(`  - ${reason}`);
  }
  out.push("");

  const totals = report.totals;
  const agreement = report.agreement;
  out.push("Totals");
  out.push(
    table([
      ["requests", String(totals?.requestCount ?? 0n)],
      ["primary records (all)", String(totals?.primaryRecordCount ?? 0n)],
      ["shadow records (all)", String(totals?.shadowRecordCount ?? 0n)],
      ["pairs", String(totals?.pairCount ?? 0n)],
      ["judged pairs (the comparison's base)", String(totals?.judgedPairCount ?? 0n)],
      ["conflicts (same id, different input)", String(totals?.conflictCount ?? 0n)],
      ["caller-error pairs (nobody's fault)", String(totals?.callerErrorPairCount ?? 0n)],
      ["mirror ratio", pct(totals?.mirrorRatio ?? 0)],
      ["unmatched primary", String(totals?.unmatchedPrimaryCount ?? 0n)],
      ["unmatched shadow", String(totals?.unmatchedShadowCount ?? 0n)],
      ["pending (in join window)", String(totals?.pendingCount ?? 0n)],
    ]),
  );
  out.push("");

  const coverage = report.coverage;
  out.push(
    `Coverage: ${pct(coverage?.ratio ?? 0)} — ${coverage?.mirroredPrimaryCount ?? 0n} of ` +
      `${coverage?.settledPrimaryCount ?? 0n} settled primary records have a shadow record, at an expected ` +
      `mirror share of ${pct(coverage?.expectedRatio ?? 0)} (PROMOTE needs ${pct(coverage?.minRatio ?? 0)})`,
  );
  out.push(
    `Last records: primary ${when(coverage?.lastPrimaryTime)}, shadow ${when(coverage?.lastShadowTime)}; ` +
      `shadow silent for ${seconds(coverage?.shadowSilence)} while the primary's kept coming ` +
      `(PROMOTE allows ${seconds(coverage?.maxShadowSilence)})`,
  );
  out.push("");
  out.push(
    `Agreement: ${pct(agreement?.rate ?? 0)} of ${agreement?.pairCount ?? 0n} compared pairs ` +
      `(95 % Wilson interval ${pct(agreement?.lowerBound ?? 0)} – ${pct(agreement?.upperBound ?? 1)})`,
  );
  const delta = report.scoreDelta;
  out.push(
    `Score delta |Δp|: mean ${(delta?.mean ?? 0).toFixed(3)}, p50 ${(delta?.p50 ?? 0).toFixed(3)}, ` +
      `p95 ${(delta?.p95 ?? 0).toFixed(3)}, max ${(delta?.max ?? 0).toFixed(3)}`,
  );
  out.push("");

  if (report.labelFlips.length > 0) {
    const primaryLabels = [...new Set(report.labelFlips.map((f) => f.primaryLabel))].sort();
    const shadowLabels = [...new Set(report.labelFlips.map((f) => f.shadowLabel))].sort();
    const count = (p: string, s: string) =>
      String(report.labelFlips.find((f) => f.primaryLabel === p && f.shadowLabel === s)?.count ?? 0n);
    out.push("Label flips (rows: primary label, columns: shadow label)");
    out.push(
      table([
        ["primary \\ shadow", ...shadowLabels],
        ...primaryLabels.map((p) => [p, ...shadowLabels.map((s) => count(p, s))]),
      ]),
    );
    out.push("");
  }

  const primary = roleColumn(report.primary);
  const shadow = roleColumn(report.shadow);
  const labels = [
    "models",
    "records (judged pairs)",
    "errors",
    "latency p50",
    "latency p95",
    "latency p99",
    "feedback accuracy",
    "all records (total)",
    "all errors (total)",
  ];
  out.push(
    `Per role (errors, latency and accuracy on the ${totals?.judgedPairCount ?? 0n} judged pairs; totals below)`,
  );
  out.push(
    table([
      ["", "primary", "shadow"],
      ...labels.map((label, i) => [label, primary[i] ?? "", shadow[i] ?? ""]),
    ]),
  );
  out.push(
    `  latency p99 ratio (shadow / primary): ${report.latencyP99Ratio > 0 ? `${report.latencyP99Ratio.toFixed(2)}×` : "unknown"}`,
  );
  out.push("");

  if (report.callerErrors.length > 0) {
    out.push("Caller errors (both models refused identically; counted against neither)");
    out.push(
      table(
        report.callerErrors.map((e) => [
          `${grpcCodeName(e.grpcStatusCode)} (${e.grpcStatusCode})`,
          `${e.pairCount} pairs`,
        ]),
      ),
    );
    out.push("");
  }

  if (report.recentConflicts.length > 0) {
    out.push(
      `Conflicts: pairs whose inputs differ, never compared (${totals?.conflictCount ?? 0n}; newest first)`,
    );
    const fingerprint = (input: { sha256: string; length: number } | undefined) =>
      `sha256:${(input?.sha256 ?? "").slice(0, 12)} len ${input?.length ?? 0}`;
    out.push(
      table(
        [
          ["time", "request id", "primary input", "shadow input"],
          ...report.recentConflicts.map((c) => [
            c.time ? timestampDate(c.time).toISOString() : "?",
            c.batchIndex > 0 ? `${c.requestId}#${c.batchIndex}` : c.requestId,
            fingerprint(c.primaryInput),
            fingerprint(c.shadowInput),
          ]),
        ],
        4,
      ),
    );
    out.push("");
  }

  if (report.errors.length > 0) {
    out.push("Errors in judged pairs by gRPC code");
    out.push(
      table(
        report.errors.map((e) => [
          enumName(RoleSchema, e.role).toLowerCase(),
          `${grpcCodeName(e.grpcStatusCode)} (${e.grpcStatusCode})`,
          String(e.count),
        ]),
      ),
    );
    out.push("");
  }

  out.push("Checks");
  out.push(
    table(
      (verdict?.checks ?? []).map((c) => [
        outcomeWord(c.outcome),
        c.name,
        `observed ${num(c.observed)}`,
        `threshold ${num(c.threshold)}`,
      ]),
      2,
    ),
  );
  out.push("");

  out.push(`Recent disagreements (${report.recentDisagreements.length})`);
  if (report.recentDisagreements.length === 0) {
    out.push("  none");
  } else {
    const p = (probabilities: { label: string; probability: number }[], label: string) =>
      (probabilities.find((x) => x.label === label)?.probability ?? 0).toFixed(2);
    out.push(
      table(
        [
          ["time", "request id", "primary", "shadow", "feedback", "input"],
          ...report.recentDisagreements.map((d) => [
            d.time ? timestampDate(d.time).toISOString() : "?",
            d.batchIndex > 0 ? `${d.requestId}#${d.batchIndex}` : d.requestId,
            `${d.primaryLabel} ${p(d.primaryProbabilities, d.primaryLabel)}`,
            `${d.shadowLabel} ${p(d.shadowProbabilities, d.shadowLabel)}`,
            d.feedbackLabel || "-",
            d.input?.text
              ? JSON.stringify(d.input.text.length > 40 ? `${d.input.text.slice(0, 39)}…` : d.input.text)
              : `sha256:${(d.input?.sha256 ?? "").slice(0, 12)} len ${d.input?.length ?? 0}`,
          ]),
        ],
        2,
      ),
    );
  }
  return out.join("\n");
}

/** The candidates side by side (ListCandidates): verdict, pairs, agreement with its interval, latency, accuracy. */
export function formatCandidates(reports: readonly ShadowReport[]): string {
  if (reports.length === 0) {
    return "No candidate (no shadow record) in the window.";
  }
  const accuracy = (summary: RoleSummary | undefined) =>
    summary && summary.feedbackCount > 0n ? `${pct(summary.accuracy)} of ${summary.feedbackCount}` : "-";
  const rows = [
    [
      "candidate",
      "verdict",
      "pairs",
      "agreement",
      "95 % interval",
      "p99 ratio",
      "accuracy",
      "primary accuracy",
    ],
    ...reports.map((r) => [
      r.candidate === "" ? '""' : r.candidate,
      enumName(DecisionSchema, r.verdict?.decision ?? Decision.UNSPECIFIED),
      String(r.totals?.pairCount ?? 0n),
      r.agreement && r.agreement.pairCount > 0n ? pct(r.agreement.rate) : "-",
      r.agreement && r.agreement.pairCount > 0n
        ? `${pct(r.agreement.lowerBound)} – ${pct(r.agreement.upperBound)}`
        : "-",
      r.latencyP99Ratio > 0 ? `${r.latencyP99Ratio.toFixed(2)}×` : "-",
      accuracy(r.shadow),
      accuracy(r.primary),
    ]),
  ];
  return `Candidates\n${table(rows, 2)}`;
}
