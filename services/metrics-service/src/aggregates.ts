import { Role } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  callerError,
  differentInputs,
  emptyRoleTally,
  emptySeries,
  LATENCY_BUCKETS_MS,
  latencyBucketIndex,
  noteModel,
  type ReportOptions,
  type ReportTally,
  type RequestRecords,
  type RoleTally,
  seriesStepMs,
  windowStartMs,
} from "./report.js";
import { type ReportRow, STORED_ROLES, type StoredRole } from "./store.js";

/**
 * The report's numbers, maintained at ingest in time buckets (README: "At scale"), so that a report sums a few
 * hundred buckets instead of reading every record of its window.
 *
 * Every request (join key: request id and batch index) contributes to the buckets through one function of its
 * records and feedback, `contribute` — the same classification as the reference report (report.ts: a pair, a
 * conflict, a caller error, judged, compared; a lone or too-far record). When a request changes (its partner
 * arrives, a MIRROR record replaces the shadow's own, feedback arrives or changes, retention removes one side) its
 * old contribution is subtracted and the new one added, so the buckets always equal what the reference would count
 * from the stored rows. A pair lives in the bucket of its primary's time, a lone record in that of its own time.
 *
 * Two resolutions: 1 s buckets for the last LEVEL0_HORIZON_MS (windows up to 30 min, whose series steps are
 * 1–30 s) and 1 min buckets for the whole retention (longer windows: steps of 1 min and more). Report windows start
 * on a step boundary (normalised), so a window is a whole number of buckets. What is approximate: latency and score
 * delta percentiles come from log-spaced (latency, ≤ 0.5 % off) and 0.0001-wide (delta) histograms; every count,
 * rate and the verdict's inputs other than the p99 latencies are exact.
 */

/** Widths of the two bucket levels. */
export const LEVEL_WIDTHS_MS = [1000, 60_000] as const;
/** How long 1 s buckets are kept (beyond the longest window they serve, 30 min, and the join window). */
export const LEVEL0_HORIZON_MS = 45 * 60_000;

const LOG_GAMMA = Math.log(1.01);
const ZERO_BIN = -1_000_000;
/** The latency histogram's bin of a value: log-spaced, 1 % wide. */
export const latencyBin = (ms: number): number => (ms > 0 ? Math.floor(Math.log(ms) / LOG_GAMMA) : ZERO_BIN);
/** The value a latency bin stands for: its geometric middle (within 0.5 % of every value in it). */
export const latencyBinValue = (bin: number): number =>
  bin === ZERO_BIN ? 0 : Math.exp((bin + 0.5) * LOG_GAMMA);
/** Score deltas (0–1) are kept to 0.0001. */
export const deltaBin = (delta: number): number => Math.round(delta * 10_000);
export const deltaBinValue = (bin: number): number => bin / 10_000;

interface RoleCells {
  all: number;
  allErrors: number;
  judged: number;
  errors: Map<number, number>;
  /** Records without a partner (pending or unmatched, depending on their age at report time). */
  lone: number;
  /** Records whose partner is further than the join window: unmatched at once. */
  tooFar: number;
  latencyCounts: number[];
  latency: Map<number, number>;
  feedback: number;
  correct: number;
  models: Map<string, { name: string; version: string; n: number; lastMs: number }>;
}

const roleCells = (): RoleCells => ({
  all: 0,
  allErrors: 0,
  judged: 0,
  errors: new Map(),
  lone: 0,
  tooFar: 0,
  latencyCounts: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
  latency: new Map(),
  feedback: 0,
  correct: 0,
  models: new Map(),
});

function add<K>(map: Map<K, number>, key: K, n: number): void {
  const value = (map.get(key) ?? 0) + n;
  if (value === 0) {
    map.delete(key);
  } else {
    map.set(key, value);
  }
}

export class Bucket {
  requests = 0;
  pairs = 0;
  judged = 0;
  compared = 0;
  agreeing = 0;
  conflicts = 0;
  callerErrors = new Map<number, number>();
  roles: Record<StoredRole, RoleCells> = { [Role.PRIMARY]: roleCells(), [Role.SHADOW]: roleCells() };
  flips = new Map<string, number>();
  deltaSum = 0;
  deltas = new Map<number, number>();
  firstPrimaryMs = Number.POSITIVE_INFINITY;
  lastPrimaryMs = Number.NEGATIVE_INFINITY;
  /** The shadow's own (not MIRROR) records, and the newest one's time. */
  shadowOwn = 0;
  lastShadowMs = Number.NEGATIVE_INFINITY;
  /** 1 s buckets only, while young: lone records by exact time, for splitting pending from unmatched. */
  loneTimes: Map<number, [number, number]> | undefined;
  loneTimesDropped = false;

  constructor(
    readonly startMs: number,
    readonly widthMs: number,
    fine: boolean,
  ) {
    if (fine) {
      this.loneTimes = new Map();
    }
  }

  toJSON(): unknown {
    const role = (r: RoleCells) => ({
      ...r,
      errors: [...r.errors],
      latency: [...r.latency],
      models: [...r.models.values()],
    });
    const finite = (x: number) => (Number.isFinite(x) ? x : null);
    return {
      requests: this.requests,
      pairs: this.pairs,
      judged: this.judged,
      compared: this.compared,
      agreeing: this.agreeing,
      conflicts: this.conflicts,
      callerErrors: [...this.callerErrors],
      roles: [role(this.roles[Role.PRIMARY]), role(this.roles[Role.SHADOW])],
      flips: [...this.flips],
      deltaSum: this.deltaSum,
      deltas: [...this.deltas],
      firstPrimaryMs: finite(this.firstPrimaryMs),
      lastPrimaryMs: finite(this.lastPrimaryMs),
      shadowOwn: this.shadowOwn,
      lastShadowMs: finite(this.lastShadowMs),
      loneTimes: this.loneTimes ? [...this.loneTimes] : null,
      loneTimesDropped: this.loneTimesDropped,
    };
  }

  static fromJSON(startMs: number, widthMs: number, json: string): Bucket {
    // biome-ignore lint/suspicious/noExplicitAny: the serialized form written by toJSON above
    const data = JSON.parse(json) as any;
    const bucket = new Bucket(startMs, widthMs, false);
    const role = (
      r: RoleCells & { errors: [number, number][]; latency: [number, number][]; models: never[] },
    ) => ({
      ...r,
      errors: new Map(r.errors),
      latency: new Map(r.latency),
      models: new Map(
        (r.models as { name: string; version: string; n: number; lastMs: number }[]).map((m) => [
          `${m.name}\u0000${m.version}`,
          m,
        ]),
      ),
    });
    Object.assign(bucket, {
      requests: data.requests,
      pairs: data.pairs,
      judged: data.judged,
      compared: data.compared,
      agreeing: data.agreeing,
      conflicts: data.conflicts,
      callerErrors: new Map(data.callerErrors),
      roles: { [Role.PRIMARY]: role(data.roles[0]), [Role.SHADOW]: role(data.roles[1]) },
      flips: new Map(data.flips),
      deltaSum: data.deltaSum,
      deltas: new Map(data.deltas),
      firstPrimaryMs: data.firstPrimaryMs ?? Number.POSITIVE_INFINITY,
      lastPrimaryMs: data.lastPrimaryMs ?? Number.NEGATIVE_INFINITY,
      shadowOwn: data.shadowOwn,
      lastShadowMs: data.lastShadowMs ?? Number.NEGATIVE_INFINITY,
      loneTimes: data.loneTimes ? new Map(data.loneTimes) : undefined,
      loneTimesDropped: data.loneTimesDropped,
    });
    return bucket;
  }
}

const isOk = (r: ReportRow) => r.grpcCode === 0 && r.label !== "";

/** What a request shows in the report's lists: a disagreement (1) or a conflict (2), at its primary's time. */
export interface Notable {
  kind: 1 | 2;
  timeMs: number;
}

/** Whether a request is a pair (both records within the join window). */
export const isPair = (s: RequestRecords, joinWindowMs: number): s is Required<RequestRecords> =>
  s.primary !== undefined &&
  s.shadow !== undefined &&
  Math.abs(s.primary.timeMs - s.shadow.timeMs) <= joinWindowMs;

export function notableOf(s: RequestRecords, joinWindowMs: number): Notable | undefined {
  if (!isPair(s, joinWindowMs)) {
    return undefined;
  }
  const { primary, shadow } = s;
  if (differentInputs(primary, shadow)) {
    return { kind: 2, timeMs: primary.timeMs };
  }
  if (callerError(primary, shadow) || !isOk(primary) || !isOk(shadow) || primary.label === shadow.label) {
    return undefined;
  }
  return { kind: 1, timeMs: primary.timeMs };
}

/** A level of buckets of one width. */
class Level {
  readonly buckets = new Map<number, Bucket>();
  constructor(
    readonly widthMs: number,
    readonly fine: boolean,
  ) {}
  keyOf(timeMs: number): number {
    return Math.floor(timeMs / this.widthMs) * this.widthMs;
  }
}

export class Aggregates {
  readonly levels = LEVEL_WIDTHS_MS.map((width, i) => new Level(width, i === 0));
  /** Buckets changed since the last `takeTouched`, to persist: [level, start]. */
  #touched = new Map<string, [number, number]>();
  /** Nothing before this is counted any more (the retention's cut). */
  floorMs = Number.NEGATIVE_INFINITY;

  constructor(
    readonly joinWindowMs: number,
    /** The newest own shadow record in [fromMs, toMs), for correcting a bucket after a MIRROR replacement. */
    private readonly newestShadowOwn: (fromMs: number, toMs: number) => number | undefined,
    /** The oldest and newest primary records in [fromMs, toMs), for correcting a bucket after a removal. */
    private readonly primaryRange: (fromMs: number, toMs: number) => [number, number] | undefined = () =>
      undefined,
  ) {}

  /** The buckets (one per level) of a time, created when missing; none before the retention's cut. */
  #bucketsAt(timeMs: number): Bucket[] {
    const found: Bucket[] = [];
    if (timeMs < this.floorMs) {
      return found;
    }
    this.levels.forEach((level, i) => {
      const key = level.keyOf(timeMs);
      let bucket = level.buckets.get(key);
      if (!bucket) {
        bucket = new Bucket(key, level.widthMs, level.fine);
        level.buckets.set(key, bucket);
      }
      this.#touched.set(`${i}/${key}`, [i, key]);
      found.push(bucket);
    });
    return found;
  }

  /** Adds (sign 1) or removes (sign −1) what a request's records and feedback count. */
  contribute(s: RequestRecords, sign: 1 | -1): void {
    this.#contribute(s, sign, false);
  }

  /**
   * Adds (sign 1) or removes (sign −1) what a candidate's record changes in a request's count, relative to the
   * primary's record alone: `contribute(s)` minus `contribute({ primary })` (a candidate's part, store.ts). For a pair
   * the two share the primary's total and the request itself, so only the rest is counted (and the primary's lone
   * count taken back), which is what makes a candidate's part cheap.
   */
  contributeDelta(s: RequestRecords, sign: 1 | -1): void {
    if (!s.shadow) {
      return;
    }
    if (s.primary && isPair(s, this.joinWindowMs)) {
      this.#contribute(s, sign, true);
      for (const b of this.#bucketsAt(s.primary.timeMs)) {
        this.#lone(b, s.primary, -sign);
      }
      return;
    }
    this.#contribute(s, sign, false);
    if (s.primary) {
      this.#contribute({ primary: s.primary }, sign > 0 ? -1 : 1, false);
    }
  }

  /** A lone record's count in a bucket (besides its total). */
  #lone(b: Bucket, r: ReportRow, sign: number): void {
    b.roles[r.role].lone += sign;
    if (b.loneTimes) {
      const at: [number, number] = b.loneTimes.get(r.timeMs) ?? [0, 0];
      if (r.role === Role.PRIMARY) {
        at[0] += sign;
      } else {
        at[1] += sign;
      }
      if (at[0] === 0 && at[1] === 0) {
        b.loneTimes.delete(r.timeMs);
      } else {
        b.loneTimes.set(r.timeMs, at);
      }
    }
  }

  /** `contribute`; `sharedWithPrimary`: a pair without what the primary's record alone counts too (see above). */
  #contribute(s: RequestRecords, sign: 1 | -1, sharedWithPrimary: boolean): void {
    const { primary, shadow } = s;
    if (isPair(s, this.joinWindowMs)) {
      const p = s.primary;
      const sh = s.shadow;
      for (const b of this.#bucketsAt(p.timeMs)) {
        b.pairs += sign;
        if (!sharedWithPrimary) {
          b.requests += sign;
          this.#total(b, p, sign);
        }
        this.#total(b, sh, sign);
        if (differentInputs(p, sh)) {
          b.conflicts += sign;
          continue;
        }
        if (callerError(p, sh)) {
          add(b.callerErrors, p.grpcCode, sign);
          continue;
        }
        b.judged += sign;
        for (const r of [p, sh]) {
          const cells = b.roles[r.role];
          cells.judged += sign;
          if (!isOk(r)) {
            add(cells.errors, r.grpcCode, sign);
          }
        }
        if (!isOk(p) || !isOk(sh)) {
          continue;
        }
        b.compared += sign;
        for (const r of [p, sh]) {
          const cells = b.roles[r.role];
          const i = latencyBucketIndex(r.latencyMs);
          cells.latencyCounts[i] = (cells.latencyCounts[i] ?? 0) + sign;
          add(cells.latency, latencyBin(r.latencyMs), sign);
          if (r.feedbackLabel !== null) {
            cells.feedback += sign;
            if (r.feedbackLabel === r.label) {
              cells.correct += sign;
            }
          }
        }
        if (p.label === sh.label) {
          b.agreeing += sign;
        }
        add(b.flips, JSON.stringify([p.label, sh.label]), sign);
        const delta = sh.scoreDelta ?? 0;
        b.deltaSum += sign * delta;
        add(b.deltas, deltaBin(delta), sign);
      }
      return;
    }
    const tooFar = primary !== undefined && shadow !== undefined;
    let newest = Number.NEGATIVE_INFINITY;
    for (const r of [primary, shadow]) {
      if (!r) {
        continue;
      }
      newest = Math.max(newest, r.timeMs);
      for (const b of this.#bucketsAt(r.timeMs)) {
        this.#total(b, r, sign);
        const cells = b.roles[r.role];
        if (tooFar) {
          cells.tooFar += sign;
        } else {
          this.#lone(b, r, sign);
        }
      }
    }
    // A request without a pair counts once, in the window of its newest record.
    if (newest > Number.NEGATIVE_INFINITY) {
      for (const b of this.#bucketsAt(newest)) {
        b.requests += sign;
      }
    }
  }

  #total(b: Bucket, r: ReportRow, sign: number): void {
    const cells = b.roles[r.role];
    cells.all += sign;
    if (!isOk(r)) {
      cells.allErrors += sign;
    }
    const key = `${r.modelName}\u0000${r.modelVersion}`;
    const model = cells.models.get(key) ?? {
      name: r.modelName,
      version: r.modelVersion,
      n: 0,
      lastMs: r.timeMs,
    };
    model.n += sign;
    model.lastMs = Math.max(model.lastMs, r.timeMs);
    if (model.n === 0) {
      cells.models.delete(key);
    } else {
      cells.models.set(key, model);
    }
  }

  /** A stored primary record (by its own time, paired or not): the coverage's first and last primary times. */
  primaryStored(timeMs: number): void {
    for (const b of this.#bucketsAt(timeMs)) {
      b.firstPrimaryMs = Math.min(b.firstPrimaryMs, timeMs);
      b.lastPrimaryMs = Math.max(b.lastPrimaryMs, timeMs);
    }
  }

  /** A primary record removed (retention): its buckets' first and last primary times, recounted from the store. */
  primaryRemoved(timeMs: number): void {
    for (const b of this.#bucketsAt(timeMs)) {
      if (b.firstPrimaryMs === timeMs || b.lastPrimaryMs === timeMs) {
        const range = this.primaryRange(b.startMs, b.startMs + b.widthMs);
        b.firstPrimaryMs = range?.[0] ?? Number.POSITIVE_INFINITY;
        b.lastPrimaryMs = range?.[1] ?? Number.NEGATIVE_INFINITY;
      }
    }
  }

  /**
   * The shadow's own record stored (1), or replaced by a MIRROR record or removed (−1; after the store changed):
   * the silence check's last time.
   */
  shadowOwnStored(timeMs: number, sign: 1 | -1): void {
    for (const b of this.#bucketsAt(timeMs)) {
      b.shadowOwn += sign;
      if (sign > 0) {
        b.lastShadowMs = Math.max(b.lastShadowMs, timeMs);
      } else if (b.shadowOwn <= 0) {
        b.lastShadowMs = Number.NEGATIVE_INFINITY;
      } else if (b.lastShadowMs === timeMs) {
        b.lastShadowMs = this.newestShadowOwn(b.startMs, b.startMs + b.widthMs) ?? Number.NEGATIVE_INFINITY;
      }
    }
  }

  get hasTouched(): boolean {
    return this.#touched.size > 0;
  }

  /** The buckets changed since the last call: [level, start, bucket or undefined when dropped]. */
  takeTouched(): [number, number, Bucket | undefined][] {
    const touched = [...this.#touched.values()].map(([level, key]): [number, number, Bucket | undefined] => [
      level,
      key,
      this.levels[level]?.buckets.get(key),
    ]);
    this.#touched.clear();
    return touched;
  }

  /** Loads a persisted bucket. */
  load(level: number, startMs: number, json: string): void {
    const found = this.levels[level];
    found?.buckets.set(startMs, Bucket.fromJSON(startMs, found.widthMs, json));
  }

  /**
   * Forgets what no report will read again as of `nowMs`: 1 s buckets older than their horizon, and the exact lone
   * times of buckets older than the join window. Returns the dropped buckets' [level, start].
   */
  prune(nowMs: number): [number, number][] {
    const dropped: [number, number][] = [];
    const fine = this.levels[0];
    if (!fine) {
      return dropped;
    }
    const horizon = nowMs - Math.max(LEVEL0_HORIZON_MS, this.joinWindowMs + 5 * 60_000);
    // Kept 5 min longer than needed, so that a clock stepping back a little still finds them.
    const loneHorizon = nowMs - this.joinWindowMs - 5 * 60_000;
    for (const [key, bucket] of fine.buckets) {
      if (key < horizon) {
        fine.buckets.delete(key);
        dropped.push([0, key]);
      } else if (key < loneHorizon && bucket.loneTimes) {
        bucket.loneTimes = undefined;
        bucket.loneTimesDropped = true;
        this.#touched.set(`0/${key}`, [0, key]);
      }
    }
    return dropped;
  }

  /** Drops every bucket before `cutMs` (a multiple of the widest bucket) and counts nothing before it again. */
  cut(cutMs: number): [number, number][] {
    this.floorMs = Math.max(this.floorMs, cutMs);
    const dropped: [number, number][] = [];
    this.levels.forEach((level, i) => {
      for (const key of level.buckets.keys()) {
        if (key < cutMs) {
          level.buckets.delete(key);
          dropped.push([i, key]);
        }
      }
    });
    return dropped;
  }

  /**
   * The report's counts for a window (its start normalised: a multiple of the series step), without the lists of
   * disagreements and conflicts (the store reads those).
   */
  tally(options: ReportOptions): Omit<ReportTally, "disagreements" | "conflicts"> {
    return tallyAggregates([this], options);
  }

  /** Whether the window holds any SHADOW record counted here (a candidate's part: the candidate was seen). */
  hasShadowRecords(options: Pick<ReportOptions, "nowMs" | "windowMs" | "startMs">): boolean {
    const startMs = windowStartMs(options);
    const level = this.levels[levelIndexFor(options)] as Level;
    for (const [key, b] of level.buckets) {
      if (key >= startMs && b.roles[Role.SHADOW].all !== 0) {
        return true;
      }
    }
    return false;
  }
}

/** The buckets of one level of several parts, part after part (no copy). */
function* bucketsOf(parts: readonly Aggregates[], level: number): Generator<[number, Bucket]> {
  for (const part of parts) {
    const found = part.levels[level];
    if (found) {
      yield* found.buckets;
    }
  }
}

/** Which level a window's tally reads: the 1 min buckets when its step and start are whole minutes. */
function levelIndexFor(options: Pick<ReportOptions, "nowMs" | "windowMs" | "startMs">): 0 | 1 {
  const startMs = windowStartMs(options);
  const step = seriesStepMs(options.windowMs);
  return step % (LEVEL_WIDTHS_MS[1] as number) === 0 && startMs % LEVEL_WIDTHS_MS[1] === 0 ? 1 : 0;
}

/**
 * The report's counts for a window (its start normalised: a multiple of the series step) from the sum of several
 * aggregates' buckets (the primary's part and one candidate's part, store.ts), without the lists of disagreements
 * and conflicts (the store reads those). Every count is a sum, so the parts' buckets of one time simply add up.
 */
export function tallyAggregates(
  parts: readonly Aggregates[],
  options: ReportOptions,
): Omit<ReportTally, "disagreements" | "conflicts"> {
  const { nowMs, joinWindowMs } = options;
  const startMs = windowStartMs(options);
  const step = seriesStepMs(options.windowMs);
  const levelIndex = levelIndexFor(options);
  const series = emptySeries(startMs, nowMs, options.windowMs);
  const roles: Record<StoredRole, RoleTally> = {
    [Role.PRIMARY]: emptyRoleTally(),
    [Role.SHADOW]: emptyRoleTally(),
  };
  const latency: Record<StoredRole, Map<number, number>> = {
    [Role.PRIMARY]: new Map(),
    [Role.SHADOW]: new Map(),
  };
  const lone: Record<StoredRole, number> = { [Role.PRIMARY]: 0, [Role.SHADOW]: 0 };
  const tooFar: Record<StoredRole, number> = { [Role.PRIMARY]: 0, [Role.SHADOW]: 0 };
  const callerErrors = new Map<number, number>();
  const flipCounts = new Map<string, number>();
  const deltas = new Map<number, number>();
  let deltaSum = 0;
  const t = {
    requestCount: 0,
    pairCount: 0,
    judgedCount: 0,
    compared: 0,
    agreeing: 0,
    conflictCount: 0,
    firstPrimaryMs: Number.POSITIVE_INFINITY,
    lastPrimaryMs: Number.NEGATIVE_INFINITY,
    lastShadowMs: Number.NEGATIVE_INFINITY,
  };
  for (const [key, b] of bucketsOf(parts, levelIndex)) {
    if (key < startMs) {
      continue;
    }
    t.requestCount += b.requests;
    t.pairCount += b.pairs;
    t.judgedCount += b.judged;
    t.compared += b.compared;
    t.agreeing += b.agreeing;
    t.conflictCount += b.conflicts;
    t.firstPrimaryMs = Math.min(t.firstPrimaryMs, b.firstPrimaryMs);
    t.lastPrimaryMs = Math.max(t.lastPrimaryMs, b.lastPrimaryMs);
    t.lastShadowMs = Math.max(t.lastShadowMs, b.lastShadowMs);
    for (const [code, n] of b.callerErrors) {
      add(callerErrors, code, n);
    }
    for (const [flip, n] of b.flips) {
      add(flipCounts, flip, n);
    }
    deltaSum += b.deltaSum;
    for (const [bin, n] of b.deltas) {
      add(deltas, bin, n);
    }
    const point = series.get(Math.floor(key / step) * step);
    if (point) {
      point.pairs += b.compared;
      point.agreeing += b.agreeing;
    }
    for (const role of STORED_ROLES) {
      const cells = b.roles[role];
      const out = roles[role];
      out.records += cells.judged;
      for (const [code, n] of cells.errors) {
        out.errors += n;
        add(out.errorsByCode, code, n);
      }
      out.feedback += cells.feedback;
      out.correct += cells.correct;
      out.allRecords += cells.all;
      out.allErrors += cells.allErrors;
      cells.latencyCounts.forEach((n, i) => {
        out.latencyCounts[i] = (out.latencyCounts[i] ?? 0) + n;
      });
      for (const [bin, n] of cells.latency) {
        add(latency[role], bin, n);
      }
      for (const model of cells.models.values()) {
        noteModel(out.models, model.name, model.version, model.lastMs);
      }
      lone[role] += cells.lone;
      tooFar[role] += cells.tooFar;
    }
  }
  // Pending: lone records younger than the join window (and inside the window), from the 1 s buckets.
  const pending: Record<StoredRole, number> = { [Role.PRIMARY]: 0, [Role.SHADOW]: 0 };
  const from = Math.max(nowMs - joinWindowMs + 1, startMs);
  const fineWidthMs = LEVEL_WIDTHS_MS[0];
  for (const [key, b] of bucketsOf(parts, 0)) {
    if (key + fineWidthMs <= from) {
      continue;
    }
    if (key >= from) {
      pending[Role.PRIMARY] += b.roles[Role.PRIMARY].lone;
      pending[Role.SHADOW] += b.roles[Role.SHADOW].lone;
    } else if (b.loneTimes) {
      for (const [at, [p, s]] of b.loneTimes) {
        if (at >= from) {
          pending[Role.PRIMARY] += p;
          pending[Role.SHADOW] += s;
        }
      }
    }
  }
  const unmatched: Record<StoredRole, number> = {
    [Role.PRIMARY]: lone[Role.PRIMARY] - pending[Role.PRIMARY] + tooFar[Role.PRIMARY],
    [Role.SHADOW]: lone[Role.SHADOW] - pending[Role.SHADOW] + tooFar[Role.SHADOW],
  };
  for (const role of STORED_ROLES) {
    const q = histogramQuantiles(latency[role], latencyBinValue, [0.5, 0.95, 0.99]);
    roles[role].latencyP50Ms = q[0] ?? 0;
    roles[role].latencyP95Ms = q[1] ?? 0;
    roles[role].latencyP99Ms = q[2] ?? 0;
  }
  const flips = new Map<string, { primaryLabel: string; shadowLabel: string; count: number }>();
  for (const [key, count] of flipCounts) {
    const [primaryLabel, shadowLabel] = JSON.parse(key) as [string, string];
    flips.set(key, { primaryLabel, shadowLabel, count });
  }
  let deltaCount = 0;
  for (const n of deltas.values()) {
    deltaCount += n;
  }
  const [p50 = 0, p95 = 0, max = 0] = histogramQuantiles(deltas, deltaBinValue, [0.5, 0.95, 1]);
  return {
    ...t,
    settledPrimary: t.pairCount + unmatched[Role.PRIMARY],
    mirroredPrimary: t.pairCount,
    pending: pending[Role.PRIMARY] + pending[Role.SHADOW],
    unmatched,
    callerErrors,
    flips,
    delta: { mean: deltaCount > 0 ? deltaSum / deltaCount : 0, p50, p95, max },
    roles,
    series,
  };
}

/** Nearest-rank quantiles of a histogram (bin → count), each the value its bin stands for; 0 when empty. */
export function histogramQuantiles(
  histogram: Map<number, number>,
  binValue: (bin: number) => number,
  qs: readonly number[],
): number[] {
  const bins = [...histogram.entries()].filter(([, n]) => n > 0).sort(([a], [b]) => a - b);
  let total = 0;
  for (const [, n] of bins) {
    total += n;
  }
  return qs.map((q) => {
    if (total === 0) {
      return 0;
    }
    const rank = Math.min(total, Math.max(1, Math.ceil(q * total)));
    let seen = 0;
    for (const [bin, n] of bins) {
      seen += n;
      if (seen >= rank) {
        return binValue(bin);
      }
    }
    return 0;
  });
}
