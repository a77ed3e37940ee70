import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  CheckOutcome,
  Decision,
  Role,
  type ShadowReport,
  ShadowReportSchema,
  type WatchShadowReportRequest,
  type WatchShadowReportResponse,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";

/** Test data and fakes for the Shadow views (imported by tests only). */

export const NOW = new Date("2026-11-27T12:00:00Z");

/** A report with every part filled in: 40 pairs by default, candidate spam-v2 against primary spam-v1. */
export function fullReport(pairs = 40, candidate = "spam-v2"): ShadowReport {
  const now = NOW;
  return create(ShadowReportSchema, {
    candidate,
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
      models: [{ name: candidate, version: "2.0.0" }],
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

interface Subscription {
  request: WatchShadowReportRequest;
  signal: AbortSignal;
  queue: ShadowReport[];
  failure?: unknown;
  ended: boolean;
  wake?: () => void;
}

/**
 * A WatchShadowReport implementation the test drives by hand. Every call the client makes opens a subscription
 * (kept in `calls`, with its request and its server-side abort signal); `push` sends an update on the newest one,
 * `fail` makes it throw, `end` closes it normally.
 */
export function controlledStream() {
  const calls: Subscription[] = [];
  const current = (): Subscription => {
    const last = calls.at(-1);
    if (!last) {
      throw new Error("no WatchShadowReport call yet");
    }
    return last;
  };
  return {
    calls,
    push(report: ShadowReport) {
      const subscription = current();
      subscription.queue.push(report);
      subscription.wake?.();
    },
    fail(error: unknown) {
      const subscription = current();
      subscription.failure = error;
      subscription.wake?.();
    },
    end() {
      const subscription = current();
      subscription.ended = true;
      subscription.wake?.();
    },
    async *watch(
      request: WatchShadowReportRequest,
      context: HandlerContext,
    ): AsyncIterable<Partial<WatchShadowReportResponse>> {
      const subscription: Subscription = { request, signal: context.signal, queue: [], ended: false };
      calls.push(subscription);
      for (;;) {
        const next = subscription.queue.shift();
        if (next) {
          yield { report: next };
          continue;
        }
        if (subscription.failure) {
          throw subscription.failure;
        }
        if (subscription.ended || context.signal.aborted) {
          return;
        }
        await new Promise<void>((resolve) => {
          subscription.wake = resolve;
          context.signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
    },
  };
}
