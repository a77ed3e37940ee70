import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type ConflictSchema,
  type DisagreementSchema,
  Role,
  type ShadowReport,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { mean, quantileSorted, sortedCopy, wilson } from "./stats.js";
import { type RecordDetail, type ReportRow, SOURCE_MIRROR, STORED_ROLES, type StoredRole } from "./store.js";
import { decide, type VerdictThresholds } from "./verdict.js";

/**
 * The report, computed from stored records at report time (README: "The join").
 *
 * - A **pair** is a PRIMARY and a SHADOW record with the same (request id, batch index) whose prediction times are
 *   at most the join window apart. A pair belongs to the report window by the primary's time.
 * - A record without such a partner is **pending** while it is younger than the join window (its partner may still
 *   arrive), and **unmatched** after that — counted by side. A record whose partner exists but is further away
 *   than the join window is unmatched at once.
 * - A pair whose input fingerprints differ is a **conflict** (the request id was reused for another text): never
 *   compared. A pair both models refused with the same caller-caused code is a **caller error**: nobody's fault.
 *   The other pairs are **judged**: every per-role comparison number (errors, latency, accuracy) and the verdict
 *   come from them, so both models are measured on the same requests.
 * - Only judged pairs where both calls succeeded are **compared** (agreement, flips, score delta, disagreements,
 *   latency, accuracy); a judged pair with a failed side counts its failure as an error of that role.
 * - Every record still counts in the totals (`all_*`), paired or not; unmatched primaries feed the coverage check.
 */

export interface ReportOptions {
  /** The end of the window (now). */
  nowMs: number;
  windowMs: number;
  /**
   * The start of the window when it is normalised (aligned down to the agreement series' step, so that reports
   * asked for at nearby moments share aggregates and caches); default `nowMs - windowMs`.
   */
  startMs?: number;
  joinWindowMs: number;
  maxDisagreements: number;
  /** Whether raw input text (stored only with the opt-in) is shown in disagreements. */
  includeText: boolean;
  /** The share of primary requests expected to be mirrored to the shadow (0–1); the default for every candidate. */
  expectedMirrorRatio: number;
  /** The expected share of candidates that have their own (METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS), by name. */
  expectedMirrorRatios?: ReadonlyMap<string, number>;
  /**
   * The candidate reported on (the model name of its SHADOW records; "" names a candidate whose records carry no
   * name). Unset: the only candidate in the window, the primary alone when there is none, and FAILED_PRECONDITION
   * when there are several (`resolveCandidate`).
   */
  candidate?: string;
  thresholds: VerdictThresholds;
}

/**
 * gRPC codes that describe the caller's request, not a model's fault: INVALID_ARGUMENT (empty or over-long text),
 * OUT_OF_RANGE, and RESOURCE_EXHAUSTED (a message over the size limit; a model-service under overload answers
 * UNAVAILABLE or DEADLINE_EXCEEDED instead). A pair is a caller error only when both models answered the same one of
 * these codes; a code on one side only is that model's error (it refused what the other accepted).
 */
export const CALLER_ERROR_CODES: ReadonlySet<number> = new Set([3, 11, 8]);

/**
 * CANCELLED (1) on the primary's side is the caller giving up (a browser tab closed, a client's own timeout): the
 * mirrored copy is fire-and-forget and is not cancelled with it, so the pair has no primary answer to compare and
 * the cancellation is nobody's regression. It counts as a caller error whatever the shadow answered. (A shadow that
 * hangs shows up as DEADLINE_EXCEEDED, reported by model-service or by the mirroring caller, never as CANCELLED.)
 */
export const CALLER_CANCELLED = 1;

/** Upper bounds (ms) of the latency histogram in the report; a last +Inf bucket follows. */
export const LATENCY_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/** Candidate sizes of an agreement-series bucket; the smallest giving at most MAX_SERIES_POINTS is used. */
const SERIES_STEPS_MS = [
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];
const MAX_SERIES_POINTS = 60;

/** The first records' query bound: partners of in-window records may lie up to one join window earlier. */
export function queryStartMs(
  options: Pick<ReportOptions, "nowMs" | "windowMs" | "joinWindowMs" | "startMs">,
): number {
  return windowStartMs(options) - options.joinWindowMs;
}

/** The first instant of the report window. */
export function windowStartMs(options: Pick<ReportOptions, "nowMs" | "windowMs" | "startMs">): number {
  return options.startMs ?? options.nowMs - options.windowMs;
}

/**
 * The normalised start of a window ending at `nowMs`: `nowMs - windowMs` aligned down to the agreement series'
 * step (at least a second), so the series covers the window exactly and reports asked for within one step share
 * their buckets.
 */
export function normalisedStartMs(nowMs: number, windowMs: number): number {
  const step = seriesStepMs(windowMs);
  return Math.floor((nowMs - windowMs) / step) * step;
}

export function seriesStepMs(windowMs: number): number {
  return SERIES_STEPS_MS.find((step) => windowMs / step <= MAX_SERIES_POINTS) ?? windowMs;
}

const isOk = (r: ReportRow) => r.grpcCode === 0 && r.label !== "";

/**
 * The candidate a report is about: the one asked for; else the only one seen in the window (`names`, sorted), or
 * none (the primary's records alone) when there is none. Several and none asked for: FAILED_PRECONDITION naming
 * them, so that an old client that knows only "the" shadow learns what to ask for.
 */
export function resolveCandidate(names: readonly string[], asked: string | undefined): string | undefined {
  if (asked !== undefined) {
    return asked;
  }
  if (names.length > 1) {
    const shown = names.slice(0, 10).map((name) => JSON.stringify(name.slice(0, 64)));
    throw new ConnectError(
      `the window holds ${names.length} candidates (${shown.join(", ")}${names.length > 10 ? ", …" : ""}); name one in the request's candidate field`,
      Code.FailedPrecondition,
    );
  }
  return names[0];
}

/** The expected mirror share of a candidate: its own when configured, else the default. */
export function expectedRatioOf(options: ReportOptions, candidate: string | undefined): number {
  return (
    (candidate !== undefined ? options.expectedMirrorRatios?.get(candidate) : undefined) ??
    options.expectedMirrorRatio
  );
}

/** One role's share of a report, however it was counted (raw rows or aggregates). */
export interface RoleTally {
  /** Judged pairs: the comparison numbers. */
  records: number;
  errors: number;
  errorsByCode: Map<number, number>;
  /** Latency of compared pairs: percentiles and the counts of LATENCY_BUCKETS_MS (+Inf last). */
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  latencyCounts: number[];
  feedback: number;
  correct: number;
  /** Every record of the role in the window: the totals. */
  allRecords: number;
  allErrors: number;
  models: Map<string, { name: string; version: string; lastMs: number }>;
}

/** A disagreement or a conflict shown in the report. */
export interface NotablePair {
  timeMs: number;
  requestId: string;
  batchIndex: number;
  primaryLabel: string;
  shadowLabel: string;
  feedbackLabel: string | null;
}

/** Everything a report says, counted; `finishReport` turns it into the message and the verdict. */
export interface ReportTally {
  requestCount: number;
  pairCount: number;
  judgedCount: number;
  compared: number;
  agreeing: number;
  settledPrimary: number;
  mirroredPrimary: number;
  firstPrimaryMs: number;
  lastPrimaryMs: number;
  lastShadowMs: number;
  pending: number;
  unmatched: Record<StoredRole, number>;
  conflictCount: number;
  /** The newest conflicts, newest first, at most maxDisagreements. */
  conflicts: NotablePair[];
  callerErrors: Map<number, number>;
  flips: Map<string, { primaryLabel: string; shadowLabel: string; count: number }>;
  delta: { mean: number; p50: number; p95: number; max: number };
  /** The newest disagreements, newest first, at most maxDisagreements. */
  disagreements: NotablePair[];
  roles: Record<StoredRole, RoleTally>;
  /** Compared and agreeing pairs by series bucket (start ms), oldest first, covering the window. */
  series: Map<number, { pairs: number; agreeing: number }>;
}

export const emptyRoleTally = (): RoleTally => ({
  records: 0,
  errors: 0,
  errorsByCode: new Map(),
  latencyP50Ms: 0,
  latencyP95Ms: 0,
  latencyP99Ms: 0,
  latencyCounts: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
  feedback: 0,
  correct: 0,
  allRecords: 0,
  allErrors: 0,
  models: new Map(),
});

/** The index in LATENCY_BUCKETS_MS (+Inf last) of a latency. */
export function latencyBucketIndex(latencyMs: number): number {
  const i = LATENCY_BUCKETS_MS.findIndex((bound) => latencyMs <= bound);
  return i < 0 ? LATENCY_BUCKETS_MS.length : i;
}

/** The empty series buckets of a window, oldest first. */
export function emptySeries(startMs: number, nowMs: number, windowMs: number) {
  const step = seriesStepMs(windowMs);
  const series = new Map<number, { pairs: number; agreeing: number }>();
  for (let at = Math.floor(startMs / step) * step; at <= nowMs; at += step) {
    series.set(at, { pairs: 0, agreeing: 0 });
  }
  return series;
}

/** Keeps a model's newest time. */
export function noteModel(models: RoleTally["models"], name: string, version: string, lastMs: number): void {
  const key = `${name}\u0000${version}`;
  const model = models.get(key);
  if (!model || model.lastMs < lastMs) {
    models.set(key, { name, version, lastMs });
  }
}

class RoleAccumulator {
  readonly tally = emptyRoleTally();
  latencies: number[] = [];

  /** Any record of this role in the window. */
  total(record: ReportRow): void {
    this.tally.allRecords++;
    if (!isOk(record)) {
      this.tally.allErrors++;
    }
    noteModel(this.tally.models, record.modelName, record.modelVersion, record.timeMs);
  }

  /** This role's record of a judged pair. */
  judged(record: ReportRow): void {
    this.tally.records++;
    if (!isOk(record)) {
      this.tally.errors++;
      const byCode = this.tally.errorsByCode;
      byCode.set(record.grpcCode, (byCode.get(record.grpcCode) ?? 0) + 1);
    }
  }

  /** This role's record of a compared pair (both calls succeeded): latency and accuracy. */
  compared(record: ReportRow): void {
    this.latencies.push(record.latencyMs);
    if (record.feedbackLabel !== null) {
      this.tally.feedback++;
      if (record.feedbackLabel === record.label) {
        this.tally.correct++;
      }
    }
  }

  finish(): RoleTally {
    const sorted = sortedCopy(this.latencies);
    for (const latency of sorted) {
      const i = latencyBucketIndex(latency);
      this.tally.latencyCounts[i] = (this.tally.latencyCounts[i] ?? 0) + 1;
    }
    this.tally.latencyP50Ms = quantileSorted(sorted, 0.5);
    this.tally.latencyP95Ms = quantileSorted(sorted, 0.95);
    this.tally.latencyP99Ms = quantileSorted(sorted, 0.99);
    return this.tally;
  }
}

function roleSummary(role: Role, acc: RoleTally) {
  return {
    role,
    models: [...acc.models.values()]
      .sort((a, b) => b.lastMs - a.lastMs)
      .map(({ name, version }) => ({ name, version })),
    recordCount: BigInt(acc.records),
    errorCount: BigInt(acc.errors),
    errorRate: acc.records > 0 ? acc.errors / acc.records : 0,
    latencyP50Ms: acc.latencyP50Ms,
    latencyP95Ms: acc.latencyP95Ms,
    latencyP99Ms: acc.latencyP99Ms,
    latencyBuckets: acc.latencyCounts.map((count, i) => ({
      upperBoundMs: LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY,
      count: BigInt(count),
    })),
    feedbackCount: BigInt(acc.feedback),
    correctCount: BigInt(acc.correct),
    accuracy: acc.feedback > 0 ? acc.correct / acc.feedback : 0,
    allRecordCount: BigInt(acc.allRecords),
    allErrorCount: BigInt(acc.allErrors),
    allErrorRate: acc.allRecords > 0 ? acc.allErrors / acc.allRecords : 0,
  };
}

/** Two fingerprints of different inputs; an empty one (a reporter that sent none) is not evidence of a conflict. */
export const differentInputs = (
  a: Pick<ReportRow, "inputSha256">,
  b: Pick<ReportRow, "inputSha256">,
): boolean => a.inputSha256 !== "" && b.inputSha256 !== "" && a.inputSha256 !== b.inputSha256;

/** Both calls refused with the same caller-caused code, or the caller cancelled the primary call. */
export const callerError = (primary: Pick<ReportRow, "grpcCode">, shadow: Pick<ReportRow, "grpcCode">) =>
  primary.grpcCode === CALLER_CANCELLED ||
  (primary.grpcCode !== 0 &&
    primary.grpcCode === shadow.grpcCode &&
    CALLER_ERROR_CODES.has(primary.grpcCode));

export interface RequestRecords {
  primary?: ReportRow;
  shadow?: ReportRow;
}

/** Reads the probabilities and inputs of a request's records (for the disagreements shown). */
export type DetailLookup = (
  requestId: string,
  batchIndex: number,
  candidate: string,
) => Partial<Record<StoredRole, RecordDetail>>;

const notable = (primary: ReportRow, shadow: ReportRow): NotablePair => ({
  timeMs: primary.timeMs,
  requestId: primary.requestId,
  batchIndex: primary.batchIndex,
  primaryLabel: primary.label,
  shadowLabel: shadow.label,
  feedbackLabel: primary.feedbackLabel,
});

/**
 * Computes the report from the records whose prediction time is at or after `queryStartMs(options)`: the
 * straightforward reference, every row in the window read and joined (the service reports from aggregates,
 * `aggregates.ts`, and a test holds the two equal).
 */
export function buildReport(
  records: readonly ReportRow[],
  options: ReportOptions,
  details: DetailLookup,
): ShadowReport {
  const candidate = resolveCandidate(candidatesOfRows(records, options), options.candidate);
  const resolved = candidate === undefined ? options : { ...options, candidate };
  return finishReport(tallyRows(records, resolved), resolved, details);
}

/**
 * The candidates with a SHADOW record in the window, sorted: a record counts in the window by its primary's time
 * when it is paired, else by its own (as everywhere in the report).
 */
export function candidatesOfRows(records: readonly ReportRow[], options: ReportOptions): string[] {
  const startMs = windowStartMs(options);
  const primaries = new Map<string, number>();
  for (const r of records) {
    if (r.role === Role.PRIMARY) {
      primaries.set(`${r.requestId}\u0000${r.batchIndex}`, r.timeMs);
    }
  }
  const names = new Set<string>();
  for (const r of records) {
    if (r.role !== Role.SHADOW) {
      continue;
    }
    const partner = primaries.get(`${r.requestId}\u0000${r.batchIndex}`);
    const paired = partner !== undefined && Math.abs(partner - r.timeMs) <= options.joinWindowMs;
    if ((paired ? partner : r.timeMs) >= startMs) {
      names.add(r.candidate);
    }
  }
  return [...names].sort();
}

/**
 * Counts a report from raw rows (see buildReport): the primary's records and those of `options.candidate` (none
 * when unset: the primary's alone).
 */
export function tallyRows(all: readonly ReportRow[], options: ReportOptions): ReportTally {
  const { nowMs, joinWindowMs } = options;
  const records = all.filter((r) => r.role === Role.PRIMARY || r.candidate === options.candidate);
  const startMs = windowStartMs(options);
  const requests = new Map<string, RequestRecords>();
  for (const record of records) {
    const key = `${record.requestId}\u0000${record.batchIndex}`;
    let entry = requests.get(key);
    if (!entry) {
      entry = {};
      requests.set(key, entry);
    }
    if (record.role === Role.PRIMARY) {
      entry.primary = record;
    } else {
      entry.shadow = record;
    }
  }

  const roles: Record<StoredRole, RoleAccumulator> = {
    [Role.PRIMARY]: new RoleAccumulator(),
    [Role.SHADOW]: new RoleAccumulator(),
  };
  let requestCount = 0;
  let pairCount = 0;
  let judgedCount = 0;
  let compared = 0;
  let settledPrimary = 0;
  let mirroredPrimary = 0;
  let firstPrimaryMs = Number.POSITIVE_INFINITY;
  let lastPrimaryMs = Number.NEGATIVE_INFINITY;
  let lastShadowMs = Number.NEGATIVE_INFINITY;
  const conflicts: NotablePair[] = [];
  const callerErrors = new Map<number, number>();
  let agreeing = 0;
  let pending = 0;
  const unmatched: Record<StoredRole, number> = { [Role.PRIMARY]: 0, [Role.SHADOW]: 0 };
  const flips = new Map<string, { primaryLabel: string; shadowLabel: string; count: number }>();
  const deltas: number[] = [];
  const disagreements: NotablePair[] = [];
  const step = seriesStepMs(options.windowMs);
  const series = emptySeries(startMs, nowMs, options.windowMs);

  for (const record of records) {
    if (record.timeMs < startMs) {
      continue;
    }
    if (record.role === Role.PRIMARY) {
      firstPrimaryMs = Math.min(firstPrimaryMs, record.timeMs);
      lastPrimaryMs = Math.max(lastPrimaryMs, record.timeMs);
    } else if (record.source !== SOURCE_MIRROR) {
      lastShadowMs = Math.max(lastShadowMs, record.timeMs);
    }
  }

  for (const { primary, shadow } of requests.values()) {
    if (primary && shadow && Math.abs(primary.timeMs - shadow.timeMs) <= joinWindowMs) {
      if (primary.timeMs < startMs) {
        continue;
      }
      requestCount++;
      pairCount++;
      settledPrimary++;
      mirroredPrimary++;
      roles[Role.PRIMARY].total(primary);
      roles[Role.SHADOW].total(shadow);
      if (differentInputs(primary, shadow)) {
        conflicts.push(notable(primary, shadow));
        continue;
      }
      if (callerError(primary, shadow)) {
        callerErrors.set(primary.grpcCode, (callerErrors.get(primary.grpcCode) ?? 0) + 1);
        continue;
      }
      judgedCount++;
      roles[Role.PRIMARY].judged(primary);
      roles[Role.SHADOW].judged(shadow);
      if (!isOk(primary) || !isOk(shadow)) {
        continue;
      }
      compared++;
      roles[Role.PRIMARY].compared(primary);
      roles[Role.SHADOW].compared(shadow);
      const agree = primary.label === shadow.label;
      if (agree) {
        agreeing++;
      } else {
        disagreements.push(notable(primary, shadow));
      }
      const flipKey = `${primary.label}\u0000${shadow.label}`;
      const flip = flips.get(flipKey) ?? { primaryLabel: primary.label, shadowLabel: shadow.label, count: 0 };
      flip.count++;
      flips.set(flipKey, flip);
      deltas.push(shadow.scoreDelta ?? 0);
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
      roles[record.role].total(record);
      if (!partnerTooFar && nowMs - record.timeMs < joinWindowMs) {
        pending++;
      } else {
        unmatched[record.role]++;
        if (record.role === Role.PRIMARY) {
          settledPrimary++;
        }
      }
    }
    if (counted) {
      requestCount++;
    }
  }

  const sortedDeltas = sortedCopy(deltas);
  const newest = (list: NotablePair[]) =>
    list.sort((a, b) => b.timeMs - a.timeMs).slice(0, options.maxDisagreements);
  return {
    requestCount,
    pairCount,
    judgedCount,
    compared,
    agreeing,
    settledPrimary,
    mirroredPrimary,
    firstPrimaryMs,
    lastPrimaryMs,
    lastShadowMs,
    pending,
    unmatched,
    conflictCount: conflicts.length,
    conflicts: newest(conflicts),
    callerErrors,
    flips,
    delta: {
      mean: mean(sortedDeltas),
      p50: quantileSorted(sortedDeltas, 0.5),
      p95: quantileSorted(sortedDeltas, 0.95),
      max: sortedDeltas.length > 0 ? (sortedDeltas[sortedDeltas.length - 1] ?? 0) : 0,
    },
    disagreements: newest(disagreements),
    roles: { [Role.PRIMARY]: roles[Role.PRIMARY].finish(), [Role.SHADOW]: roles[Role.SHADOW].finish() },
    series,
  };
}

/** The report message and its verdict, from a tally. */
export function finishReport(t: ReportTally, options: ReportOptions, details: DetailLookup): ShadowReport {
  const { nowMs } = options;
  const startMs = windowStartMs(options);
  const primarySummary = roleSummary(Role.PRIMARY, t.roles[Role.PRIMARY]);
  const shadowSummary = roleSummary(Role.SHADOW, t.roles[Role.SHADOW]);
  const interval = wilson(t.agreeing, t.compared);
  const latencyRatio =
    primarySummary.latencyP99Ms > 0 && shadowSummary.latencyP99Ms > 0
      ? shadowSummary.latencyP99Ms / primarySummary.latencyP99Ms
      : 0;

  const errors = STORED_ROLES.flatMap((role) =>
    [...t.roles[role].errorsByCode.entries()]
      .filter(([, count]) => count > 0)
      .sort(([a], [b]) => a - b)
      .map(([code, count]) => ({
        role: role,
        grpcStatusCode: code,
        count: BigInt(count),
      })),
  );

  const probabilitiesOf = (detail: RecordDetail | undefined) =>
    (detail?.probabilities ?? []).map(([label, probability]) => ({ label, probability }));
  const recent = t.disagreements.map((d): MessageInitShape<typeof DisagreementSchema> => {
    const found = details(d.requestId, d.batchIndex, options.candidate ?? "");
    const input = found[Role.PRIMARY] ?? found[Role.SHADOW];
    return {
      requestId: d.requestId,
      batchIndex: d.batchIndex,
      time: timestampFromMs(d.timeMs),
      primaryLabel: d.primaryLabel,
      shadowLabel: d.shadowLabel,
      primaryProbabilities: probabilitiesOf(found[Role.PRIMARY]),
      shadowProbabilities: probabilitiesOf(found[Role.SHADOW]),
      input: {
        sha256: input?.inputSha256 ?? "",
        length: input?.inputLength ?? 0,
        text: options.includeText
          ? (found[Role.PRIMARY]?.inputText ?? found[Role.SHADOW]?.inputText ?? "")
          : "",
      },
      feedbackLabel: d.feedbackLabel ?? "",
    };
  });

  const conflictList = t.conflicts.map((c): MessageInitShape<typeof ConflictSchema> => {
    const found = details(c.requestId, c.batchIndex, options.candidate ?? "");
    const input = (detail: RecordDetail | undefined) => ({
      sha256: detail?.inputSha256 ?? "",
      length: detail?.inputLength ?? 0,
      text: options.includeText ? (detail?.inputText ?? "") : "",
    });
    return {
      requestId: c.requestId,
      batchIndex: c.batchIndex,
      time: timestampFromMs(c.timeMs),
      primaryInput: input(found[Role.PRIMARY]),
      shadowInput: input(found[Role.SHADOW]),
    };
  });

  const { settledPrimary, mirroredPrimary, lastPrimaryMs, lastShadowMs, firstPrimaryMs } = t;
  const expected = Math.max(0, expectedRatioOf(options, options.candidate));
  const coverage = settledPrimary > 0 && expected > 0 ? mirroredPrimary / (settledPrimary * expected) : 0;
  // How long the primary's records kept coming after the shadow's newest own record (from the first primary
  // record of the window when the shadow reported nothing in it).
  const shadowSilenceMs =
    lastPrimaryMs === Number.NEGATIVE_INFINITY
      ? 0
      : Math.max(
          0,
          lastPrimaryMs - (lastShadowMs === Number.NEGATIVE_INFINITY ? firstPrimaryMs : lastShadowMs),
        );
  const callerErrors = [...t.callerErrors.entries()].filter(([, count]) => count > 0);
  let callerErrorPairs = 0;
  for (const [, n] of callerErrors) {
    callerErrorPairs += n;
  }

  const verdict = decide(
    {
      pairCount: t.judgedCount,
      allPairCount: t.pairCount,
      conflictCount: t.conflictCount,
      callerErrorPairCount: callerErrorPairs,
      expectedMirrorRatio: expected,
      settledPrimaryCount: settledPrimary,
      mirroredPrimaryCount: mirroredPrimary,
      coverage,
      shadowSilenceMs,
      comparedPairCount: t.compared,
      agreementRate: interval.rate,
      agreementLowerBound: interval.lower,
      primaryErrorRate: primarySummary.errorRate,
      shadowErrorRate: shadowSummary.errorRate,
      primaryLatencyP99Ms: primarySummary.latencyP99Ms,
      shadowLatencyP99Ms: shadowSummary.latencyP99Ms,
      primaryFeedbackCount: t.roles[Role.PRIMARY].feedback,
      primaryAccuracy: primarySummary.accuracy,
      shadowFeedbackCount: t.roles[Role.SHADOW].feedback,
      shadowAccuracy: shadowSummary.accuracy,
    },
    options.thresholds,
  );

  return create(ShadowReportSchema, {
    candidate: options.candidate ?? "",
    startTime: timestampFromMs(startMs),
    endTime: timestampFromMs(nowMs),
    generateTime: timestampFromMs(Date.now()),
    totals: {
      requestCount: BigInt(t.requestCount),
      primaryRecordCount: BigInt(t.roles[Role.PRIMARY].allRecords),
      shadowRecordCount: BigInt(t.roles[Role.SHADOW].allRecords),
      pairCount: BigInt(t.pairCount),
      unmatchedPrimaryCount: BigInt(t.unmatched[Role.PRIMARY]),
      unmatchedShadowCount: BigInt(t.unmatched[Role.SHADOW]),
      pendingCount: BigInt(t.pending),
      mirrorRatio:
        t.roles[Role.PRIMARY].allRecords > 0
          ? t.roles[Role.SHADOW].allRecords / t.roles[Role.PRIMARY].allRecords
          : 0,
      conflictCount: BigInt(t.conflictCount),
      callerErrorPairCount: BigInt(callerErrorPairs),
      judgedPairCount: BigInt(t.judgedCount),
    },
    coverage: {
      expectedRatio: expected,
      settledPrimaryCount: BigInt(settledPrimary),
      mirroredPrimaryCount: BigInt(mirroredPrimary),
      ratio: coverage,
      minRatio: options.thresholds.minCoverage,
      ...(lastPrimaryMs > Number.NEGATIVE_INFINITY
        ? { lastPrimaryTime: timestampFromMs(lastPrimaryMs) }
        : {}),
      ...(lastShadowMs > Number.NEGATIVE_INFINITY ? { lastShadowTime: timestampFromMs(lastShadowMs) } : {}),
      shadowSilence: durationFromMs(shadowSilenceMs),
      maxShadowSilence: durationFromMs(
        Math.round(
          expected > 0
            ? options.thresholds.maxShadowSilenceMs / expected
            : options.thresholds.maxShadowSilenceMs,
        ),
      ),
    },
    callerErrors: callerErrors
      .sort(([a], [b]) => a - b)
      .map(([code, count]) => ({ grpcStatusCode: code, pairCount: BigInt(count) })),
    recentConflicts: conflictList,
    agreement: {
      agreeingCount: BigInt(t.agreeing),
      pairCount: BigInt(t.compared),
      rate: interval.rate,
      lowerBound: interval.lower,
      upperBound: interval.upper,
    },
    labelFlips: [...t.flips.values()]
      .filter((flip) => flip.count > 0)
      .sort(
        (a, b) => a.primaryLabel.localeCompare(b.primaryLabel) || a.shadowLabel.localeCompare(b.shadowLabel),
      )
      .map((flip) => ({ ...flip, count: BigInt(flip.count) })),
    scoreDelta: t.delta,
    primary: primarySummary,
    shadow: shadowSummary,
    latencyP99Ratio: latencyRatio,
    errors,
    recentDisagreements: recent,
    agreementSeries: [...t.series.entries()].map(([at, bucket]) => ({
      startTime: timestampFromMs(at),
      pairCount: BigInt(bucket.pairs),
      agreeingCount: BigInt(bucket.agreeing),
    })),
    verdict,
  });
}
