import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type DisagreementSchema,
  Role,
  type ShadowReport,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { mean, quantileSorted, sortedCopy, wilson } from "./stats.js";
import type { RecordDetail, ReportRow, RoleNumber } from "./store.js";
import { decide, type VerdictThresholds } from "./verdict.js";

/**
 * The report, computed from stored records at report time (README: "The join").
 *
 * - A **pair** is a PRIMARY and a SHADOW record with the same (request id, batch index) whose prediction times are
 *   at most the join window apart. A pair belongs to the report window by the primary's time.
 * - A record without such a partner is **pending** while it is younger than the join window (its partner may still
 *   arrive), and **unmatched** after that — counted by side. A record whose partner exists but is further away
 *   than the join window is unmatched at once.
 * - Only pairs where both calls succeeded are **compared** (agreement, flips, score delta, disagreements); a pair
 *   with a failed side still counts as a pair and its failure as an error of that role.
 */

export interface ReportOptions {
  /** The end of the window (now). */
  nowMs: number;
  windowMs: number;
  joinWindowMs: number;
  maxDisagreements: number;
  /** Whether raw input text (stored only with the opt-in) is shown in disagreements. */
  includeText: boolean;
  thresholds: VerdictThresholds;
}

/** Upper bounds (ms) of the latency histogram in the report; a last +Inf bucket follows. */
export const LATENCY_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/** Candidate sizes of an agreement-series bucket; the smallest giving at most MAX_SERIES_POINTS is used. */
const SERIES_STEPS_MS = [
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];
const MAX_SERIES_POINTS = 60;

/** The first records' query bound: partners of in-window records may lie up to one join window earlier. */
export function queryStartMs(options: Pick<ReportOptions, "nowMs" | "windowMs" | "joinWindowMs">): number {
  return options.nowMs - options.windowMs - options.joinWindowMs;
}

export function seriesStepMs(windowMs: number): number {
  return SERIES_STEPS_MS.find((step) => windowMs / step <= MAX_SERIES_POINTS) ?? windowMs;
}

const isOk = (r: ReportRow) => r.grpcCode === 0 && r.label !== "";

class RoleAccumulator {
  records = 0;
  errors = 0;
  errorsByCode = new Map<number, number>();
  latencies: number[] = [];
  models = new Map<string, { name: string; version: string; lastMs: number }>();
  feedback = 0;
  correct = 0;

  constructor(readonly role: Role) {}

  add(record: ReportRow): void {
    this.records++;
    const key = `${record.modelName}\u0000${record.modelVersion}`;
    const model = this.models.get(key);
    if (!model || model.lastMs < record.timeMs) {
      this.models.set(key, { name: record.modelName, version: record.modelVersion, lastMs: record.timeMs });
    }
    if (!isOk(record)) {
      this.errors++;
      this.errorsByCode.set(record.grpcCode, (this.errorsByCode.get(record.grpcCode) ?? 0) + 1);
      return;
    }
    this.latencies.push(record.latencyMs);
    if (record.feedbackLabel !== null) {
      this.feedback++;
      if (record.feedbackLabel === record.label) {
        this.correct++;
      }
    }
  }
}

function roleSummary(acc: RoleAccumulator) {
  const sorted = sortedCopy(acc.latencies);
  const counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  for (const latency of sorted) {
    let i = LATENCY_BUCKETS_MS.findIndex((bound) => latency <= bound);
    if (i < 0) {
      i = LATENCY_BUCKETS_MS.length;
    }
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return {
    role: acc.role,
    models: [...acc.models.values()]
      .sort((a, b) => b.lastMs - a.lastMs)
      .map(({ name, version }) => ({ name, version })),
    recordCount: BigInt(acc.records),
    errorCount: BigInt(acc.errors),
    errorRate: acc.records > 0 ? acc.errors / acc.records : 0,
    latencyP50Ms: quantileSorted(sorted, 0.5),
    latencyP95Ms: quantileSorted(sorted, 0.95),
    latencyP99Ms: quantileSorted(sorted, 0.99),
    latencyBuckets: counts.map((count, i) => ({
      upperBoundMs: LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY,
      count: BigInt(count),
    })),
    feedbackCount: BigInt(acc.feedback),
    correctCount: BigInt(acc.correct),
    accuracy: acc.feedback > 0 ? acc.correct / acc.feedback : 0,
  };
}

interface RequestRecords {
  primary?: ReportRow;
  shadow?: ReportRow;
}

/** Reads the probabilities and inputs of a request's records (for the disagreements shown). */
export type DetailLookup = (
  requestId: string,
  batchIndex: number,
) => Partial<Record<RoleNumber, RecordDetail>>;

/** Computes the report from the records whose prediction time is at or after `queryStartMs(options)`. */
export function buildReport(
  records: readonly ReportRow[],
  options: ReportOptions,
  details: DetailLookup,
): ShadowReport {
  const { nowMs, joinWindowMs } = options;
  const startMs = nowMs - options.windowMs;
  const requests = new Map<string, RequestRecords>();
  for (const record of records) {
    const key = `${record.requestId}\u0000${record.batchIndex}`;
    let entry = requests.get(key);
    if (!entry) {
      entry = {};
      requests.set(key, entry);
    }
    if (record.role === 1) {
      entry.primary = record;
    } else {
      entry.shadow = record;
    }
  }

  const roles: Record<RoleNumber, RoleAccumulator> = {
    1: new RoleAccumulator(Role.PRIMARY),
    2: new RoleAccumulator(Role.SHADOW),
  };
  let requestCount = 0;
  let pairCount = 0;
  let compared = 0;
  let agreeing = 0;
  let pending = 0;
  const unmatched: Record<RoleNumber, number> = { 1: 0, 2: 0 };
  const flips = new Map<string, { primaryLabel: string; shadowLabel: string; count: number }>();
  const deltas: number[] = [];
  const disagreements: { timeMs: number; primary: ReportRow; shadow: ReportRow }[] = [];
  const step = seriesStepMs(options.windowMs);
  const firstBucket = Math.floor(startMs / step) * step;
  const series = new Map<number, { pairs: number; agreeing: number }>();
  for (let at = firstBucket; at <= nowMs; at += step) {
    series.set(at, { pairs: 0, agreeing: 0 });
  }

  for (const { primary, shadow } of requests.values()) {
    if (primary && shadow && Math.abs(primary.timeMs - shadow.timeMs) <= joinWindowMs) {
      if (primary.timeMs < startMs) {
        continue;
      }
      requestCount++;
      pairCount++;
      roles[1].add(primary);
      roles[2].add(shadow);
      if (!isOk(primary) || !isOk(shadow)) {
        continue;
      }
      compared++;
      const agree = primary.label === shadow.label;
      if (agree) {
        agreeing++;
      } else {
        disagreements.push({ timeMs: primary.timeMs, primary, shadow });
      }
      const flipKey = `${primary.label}\u0000${shadow.label}`;
      const flip = flips.get(flipKey) ?? { primaryLabel: primary.label, shadowLabel: shadow.label, count: 0 };
      flip.count++;
      flips.set(flipKey, flip);
      deltas.push(primary.scoreDelta ?? shadow.scoreDelta ?? 0);
      const bucket = series.get(Math.floor(primary.timeMs / step) * step);
      if (bucket) {
        bucket.pairs++;
        bucket.agreeing += agree ? 1 : 0;
      }
      continue;
    }
    // No partner within the join window: each record stands alone.
    const partnerTooFar = primary !== undefined && shadow !== undefined;
    let counted = false;
    for (const record of [primary, shadow]) {
      if (!record || record.timeMs < startMs) {
        continue;
      }
      counted = true;
      roles[record.role].add(record);
      if (!partnerTooFar && nowMs - record.timeMs < joinWindowMs) {
        pending++;
      } else {
        unmatched[record.role]++;
      }
    }
    if (counted) {
      requestCount++;
    }
  }

  const primarySummary = roleSummary(roles[1]);
  const shadowSummary = roleSummary(roles[2]);
  const interval = wilson(agreeing, compared);
  const sortedDeltas = sortedCopy(deltas);
  const latencyRatio =
    primarySummary.latencyP99Ms > 0 && shadowSummary.latencyP99Ms > 0
      ? shadowSummary.latencyP99Ms / primarySummary.latencyP99Ms
      : 0;

  const errors = ([1, 2] as const).flatMap((role) =>
    [...roles[role].errorsByCode.entries()]
      .sort(([a], [b]) => a - b)
      .map(([code, count]) => ({ role: roles[role].role, grpcStatusCode: code, count: BigInt(count) })),
  );

  const probabilitiesOf = (detail: RecordDetail | undefined) =>
    (detail?.probabilities ?? []).map(([label, probability]) => ({ label, probability }));
  const recent = disagreements
    .sort((a, b) => b.timeMs - a.timeMs)
    .slice(0, options.maxDisagreements)
    .map(({ timeMs, primary, shadow }): MessageInitShape<typeof DisagreementSchema> => {
      const found = details(primary.requestId, primary.batchIndex);
      const input = found[1] ?? found[2];
      return {
        requestId: primary.requestId,
        batchIndex: primary.batchIndex,
        time: timestampFromMs(timeMs),
        primaryLabel: primary.label,
        shadowLabel: shadow.label,
        primaryProbabilities: probabilitiesOf(found[1]),
        shadowProbabilities: probabilitiesOf(found[2]),
        input: {
          sha256: input?.inputSha256 ?? "",
          length: input?.inputLength ?? 0,
          text: options.includeText ? (found[1]?.inputText ?? found[2]?.inputText ?? "") : "",
        },
        feedbackLabel: primary.feedbackLabel ?? "",
      };
    });

  const verdict = decide(
    {
      pairCount,
      comparedPairCount: compared,
      agreementRate: interval.rate,
      agreementLowerBound: interval.lower,
      primaryErrorRate: primarySummary.errorRate,
      shadowErrorRate: shadowSummary.errorRate,
      primaryLatencyP99Ms: primarySummary.latencyP99Ms,
      shadowLatencyP99Ms: shadowSummary.latencyP99Ms,
      primaryFeedbackCount: roles[1].feedback,
      primaryAccuracy: primarySummary.accuracy,
      shadowFeedbackCount: roles[2].feedback,
      shadowAccuracy: shadowSummary.accuracy,
    },
    options.thresholds,
  );

  return create(ShadowReportSchema, {
    startTime: timestampFromMs(startMs),
    endTime: timestampFromMs(nowMs),
    generateTime: timestampFromMs(Date.now()),
    totals: {
      requestCount: BigInt(requestCount),
      primaryRecordCount: BigInt(roles[1].records),
      shadowRecordCount: BigInt(roles[2].records),
      pairCount: BigInt(pairCount),
      unmatchedPrimaryCount: BigInt(unmatched[1]),
      unmatchedShadowCount: BigInt(unmatched[2]),
      pendingCount: BigInt(pending),
      mirrorRatio: roles[1].records > 0 ? roles[2].records / roles[1].records : 0,
    },
    agreement: {
      agreeingCount: BigInt(agreeing),
      pairCount: BigInt(compared),
      rate: interval.rate,
      lowerBound: interval.lower,
      upperBound: interval.upper,
    },
    labelFlips: [...flips.values()]
      .sort(
        (a, b) => a.primaryLabel.localeCompare(b.primaryLabel) || a.shadowLabel.localeCompare(b.shadowLabel),
      )
      .map((flip) => ({ ...flip, count: BigInt(flip.count) })),
    scoreDelta: {
      mean: mean(sortedDeltas),
      p50: quantileSorted(sortedDeltas, 0.5),
      p95: quantileSorted(sortedDeltas, 0.95),
      max: sortedDeltas.length > 0 ? (sortedDeltas[sortedDeltas.length - 1] ?? 0) : 0,
    },
    primary: primarySummary,
    shadow: shadowSummary,
    latencyP99Ratio: latencyRatio,
    errors,
    recentDisagreements: recent,
    agreementSeries: [...series.entries()].map(([at, bucket]) => ({
      startTime: timestampFromMs(at),
      pairCount: BigInt(bucket.pairs),
      agreeingCount: BigInt(bucket.agreeing),
    })),
    verdict,
  });
}
