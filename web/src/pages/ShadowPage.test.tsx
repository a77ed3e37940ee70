import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  CheckOutcome,
  Decision,
  Role,
  type ShadowReport,
  ShadowReportSchema,
  type WatchShadowReportResponse,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { render, screen, within } from "@solidjs/testing-library";
import { describe, expect, it } from "vitest";
import { withApi } from "../testing";
import { ShadowPage } from "./ShadowPage";

const now = new Date("2026-11-27T12:00:00Z");

function fullReport(pairs = 40): ShadowReport {
  return create(ShadowReportSchema, {
    totals: {
      requestCount: BigInt(pairs + 2),
      primaryRecordCount: BigInt(pairs + 2),
      shadowRecordCount: BigInt(pairs),
      pairCount: BigInt(pairs),
      unmatchedPrimaryCount: 2n,
      mirrorRatio: pairs / (pairs + 2),
      judgedPairCount: BigInt(pairs - 3),
      conflictCount: 1n,
      callerErrorPairCount: 2n,
    },
    coverage: {
      expectedRatio: 1,
      settledPrimaryCount: BigInt(pairs + 2),
      mirroredPrimaryCount: BigInt(pairs),
      ratio: pairs / (pairs + 2),
      minRatio: 0.9,
      lastPrimaryTime: timestampFromDate(now),
      lastShadowTime: timestampFromDate(new Date(now.getTime() - 45_000)),
      shadowSilence: { seconds: 45n, nanos: 0 },
      maxShadowSilence: { seconds: 30n, nanos: 0 },
    },
    callerErrors: [{ grpcStatusCode: 3, pairCount: 2n }],
    recentConflicts: [
      {
        requestId: "req-reused-7",
        time: timestampFromDate(now),
        primaryInput: { sha256: "1111111111aaaa", length: 10 },
        shadowInput: { sha256: "2222222222bbbb", length: 12 },
      },
    ],
    agreement: {
      agreeingCount: BigInt(pairs - 3),
      pairCount: BigInt(pairs),
      rate: 0.925,
      lowerBound: 0.801,
      upperBound: 0.974,
    },
    labelFlips: [
      { primaryLabel: "ham", shadowLabel: "ham", count: 20n },
      { primaryLabel: "ham", shadowLabel: "spam", count: 2n },
      { primaryLabel: "spam", shadowLabel: "ham", count: 1n },
      { primaryLabel: "spam", shadowLabel: "spam", count: 17n },
    ],
    scoreDelta: { mean: 0.081, p50: 0.05, p95: 0.31, max: 0.62 },
    primary: {
      role: Role.PRIMARY,
      models: [{ name: "spam-v1", version: "1.0.0" }],
      recordCount: BigInt(pairs + 2),
      latencyP50Ms: 0.8,
      latencyP95Ms: 1.9,
      latencyP99Ms: 3.1,
      latencyBuckets: [
        { upperBoundMs: 1, count: 30n },
        { upperBoundMs: 5, count: 12n },
        { upperBoundMs: Number.POSITIVE_INFINITY, count: 0n },
      ],
      feedbackCount: 4n,
      correctCount: 3n,
      accuracy: 0.75,
      allRecordCount: BigInt(pairs + 2 + 3),
      allErrorCount: 2n,
    },
    shadow: {
      role: Role.SHADOW,
      models: [{ name: "spam-v2", version: "2.0.0" }],
      recordCount: BigInt(pairs),
      errorCount: 1n,
      errorRate: 0.025,
      latencyP50Ms: 0.9,
      latencyP95Ms: 2.2,
      latencyP99Ms: 3.7,
      latencyBuckets: [
        { upperBoundMs: 1, count: 25n },
        { upperBoundMs: 5, count: 14n },
        { upperBoundMs: Number.POSITIVE_INFINITY, count: 1n },
      ],
      feedbackCount: 4n,
      correctCount: 4n,
      accuracy: 1,
    },
    latencyP99Ratio: 1.19,
    errors: [{ role: Role.SHADOW, grpcStatusCode: 4, count: 1n }],
    recentDisagreements: [
      {
        requestId: "req-disagree-1",
        time: timestampFromDate(now),
        primaryLabel: "ham",
        shadowLabel: "spam",
        primaryProbabilities: [
          { label: "ham", probability: 0.6 },
          { label: "spam", probability: 0.4 },
        ],
        shadowProbabilities: [
          { label: "ham", probability: 0.3 },
          { label: "spam", probability: 0.7 },
        ],
        input: { sha256: "abcdef0123456789", length: 321 },
        feedbackLabel: "spam",
      },
    ],
    agreementSeries: [
      { startTime: timestampFromDate(new Date(now.getTime() - 120_000)), pairCount: 10n, agreeingCount: 9n },
      { startTime: timestampFromDate(new Date(now.getTime() - 60_000)), pairCount: 0n, agreeingCount: 0n },
      { startTime: timestampFromDate(now), pairCount: 30n, agreeingCount: 28n },
    ],
    verdict: {
      decision: Decision.HOLD,
      reasons: ["The agreement lower bound 80.1 % is below the 95 % threshold."],
      checks: [
        {
          name: "agreement_lower_bound",
          outcome: CheckOutcome.WARN,
          observed: 0.801,
          threshold: 0.95,
          message: "Agreement is not yet high enough.",
        },
      ],
    },
  });
}

/** A stream the test feeds by hand: every `push` becomes one update. */
function controlledStream() {
  const queue: WatchShadowReportResponse[] = [];
  let wake: (() => void) | undefined;
  return {
    push(report: ShadowReport) {
      queue.push({ $typeName: "shadowmesh.metrics.v1.WatchShadowReportResponse", report });
      wake?.();
    },
    async *watch(): AsyncIterable<{ report: ShadowReport }> {
      for (;;) {
        const next = queue.shift();
        if (next?.report) {
          yield { report: next.report };
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

describe("the Shadow page", () => {
  it("says honestly that there is no comparison data while metrics-service does not implement reports", async () => {
    render(withApi({ metrics: {} }, () => <ShadowPage retryDelayMs={() => 60_000} />));
    expect(await screen.findByRole("heading", { name: "No comparison data" })).toBeInTheDocument();
    expect(screen.getByText(/does not produce reports yet/)).toBeInTheDocument();
    expect(screen.queryByText(/Verdict/)).toBeNull();
  });

  it("says so when metrics-service is unreachable", async () => {
    render(
      withApi(
        {
          metrics: {
            // biome-ignore lint/correctness/useYield: it fails before its first update
            async *watchShadowReport() {
              throw new ConnectError("metrics-service is unavailable; try again shortly", Code.Unavailable);
            },
          },
        },
        () => <ShadowPage retryDelayMs={() => 60_000} />,
      ),
    );
    expect(await screen.findByText(/is not reachable/)).toBeInTheDocument();
  });

  it("says there is no data yet when the window holds no predictions", async () => {
    render(
      withApi(
        {
          metrics: {
            async *watchShadowReport() {
              yield { report: create(ShadowReportSchema, {}) };
            },
          },
        },
        () => <ShadowPage retryDelayMs={() => 60_000} />,
      ),
    );
    expect(await screen.findByRole("heading", { name: "No comparison data yet" })).toBeInTheDocument();
  });

  it("shows the verdict, agreement, flips, latency, accuracy and disagreements of a report", async () => {
    const stream = controlledStream();
    render(withApi({ metrics: { watchShadowReport: () => stream.watch() } }, () => <ShadowPage />));
    stream.push(fullReport());
    const verdict = await screen.findByRole("region", { name: /Verdict/ });
    expect(within(verdict).getByText("Hold")).toBeInTheDocument();
    expect(within(verdict).getByText(/agreement lower bound 80\.1 %/)).toBeInTheDocument();
    expect(screen.getByTestId("agreement-rate")).toHaveTextContent("92.5 %");
    expect(screen.getByText(/95 % interval 80\.1 % – 97\.4 %/)).toBeInTheDocument();

    const matrix = screen.getByRole("table", { name: /Pairs by primary label/ });
    const hamRow = within(matrix).getByRole("row", { name: /^Ham/ });
    expect(
      within(hamRow)
        .getAllByRole("cell")
        .map((cell) => cell.textContent),
    ).toEqual(["20", "2"]);

    const latency = screen.getByRole("region", { name: "Latency per role" });
    expect(within(latency).getByRole("row", { name: /Shadow spam-v2 2\.0\.0/ })).toHaveTextContent("3.7 ms");
    expect(within(latency).getByText("1.19×")).toBeInTheDocument();
    expect(within(latency).getByRole("img", { name: /Latency distribution per role/ })).toBeInTheDocument();
    expect(screen.getByRole("img", { name: /Agreement over time in 3 buckets/ })).toBeInTheDocument();

    const accuracy = screen.getByRole("region", { name: "Accuracy on feedback" });
    expect(within(accuracy).getByRole("row", { name: /Primary/ })).toHaveTextContent("75.0 %");
    expect(within(accuracy).getByRole("row", { name: /Shadow/ })).toHaveTextContent("100.0 %");
    expect(within(accuracy).getByText(/Shadow: 1 × DEADLINE_EXCEEDED/)).toBeInTheDocument();

    const disagreements = screen.getByRole("region", { name: "Recent disagreements" });
    expect(within(disagreements).getByText("req-disagree-1")).toBeInTheDocument();
    expect(within(disagreements).getByText("Spam (70.0 %)")).toBeInTheDocument();
  });

  it("shows coverage, unmatched records, conflicts, caller errors and the last record times plainly", async () => {
    const stream = controlledStream();
    render(withApi({ metrics: { watchShadowReport: () => stream.watch() } }, () => <ShadowPage />));
    stream.push(fullReport(40));
    const traffic = await screen.findByRole("region", { name: "Traffic" });
    const stat = (label: string) => within(traffic).getByText(label, { selector: "dt" }).parentElement;
    expect(stat("Coverage")).toHaveTextContent("95.2 %");
    expect(stat("Coverage")).toHaveTextContent(/40 of 42 settled primary records .* promotion needs 90\.0 %/);
    expect(stat("Judged pairs")).toHaveTextContent("37");
    expect(stat("Primary only")).toHaveTextContent("2");
    expect(stat("Conflicts")).toHaveTextContent("1");
    expect(stat("Caller errors")).toHaveTextContent("2");
    expect(within(traffic).getByText(/2 pairs × INVALID_ARGUMENT on both sides/)).toBeInTheDocument();
    const conflicts = within(traffic).getByRole("table", { name: /inputs differ/ });
    expect(within(conflicts).getByRole("row", { name: /req-reused-7/ })).toHaveTextContent(
      /1111111111.*2222222222/,
    );
    expect(screen.getByTestId("last-records")).toHaveTextContent(
      /silent for 45\.0 s while the primary's kept coming \(promotion allows 30\.0 s\)/,
    );
    const accuracy = screen.getByRole("region", { name: "Accuracy on feedback" });
    expect(within(accuracy).getByRole("row", { name: /Primary/ })).toHaveTextContent("45 (2)");
  });

  it("updates live as new reports arrive", async () => {
    const stream = controlledStream();
    render(withApi({ metrics: { watchShadowReport: () => stream.watch() } }, () => <ShadowPage />));
    stream.push(fullReport(40));
    expect(await screen.findByText(/of 40 pairs got the same label/)).toBeInTheDocument();
    stream.push(fullReport(41));
    expect(await screen.findByText(/of 41 pairs got the same label/)).toBeInTheDocument();
    expect(screen.getByRole("status")).toHaveTextContent(/Live/);
  });
});
