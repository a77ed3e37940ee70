import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { CheckOutcome, type ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { buildReport, candidatesOfRows, normalisedStartMs, type ReportOptions } from "./report.js";
import { ShadowStore } from "./store.js";
import { type RecordSpec, stored } from "./testing/records.js";

/**
 * The report from the aggregates (what the service answers) equals the reference report computed from every raw
 * row (report.ts buildReport) on randomized traffic: late partners, partners too far apart, MIRROR records
 * replacing the shadow's own, feedback before and after the records and changed, conflicts, caller errors,
 * duplicates, records in the future and on the window's edges; after a reopen; after retention steps.
 */

const NOW = 1_800_000_000_000 + 123_457;
const JOIN = 60_000;
const HOUR = 3_600_000;

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Event {
  kind: "record" | "feedback";
  spec?: RecordSpec;
  feedback?: { requestId: string; label: string; timeMs: number };
}

/** Random traffic: a list of ingest and feedback events, in a random order. */
function traffic(seed: number, requests: number, candidates: readonly string[] = ["spam"]): Event[] {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const usedTimes = new Set<number>();
  const events: Event[] = [];
  for (let i = 0; i < requests; i++) {
    const requestId = `req-${seed}-${i}`;
    let timeMs: number;
    do {
      // Mostly inside the last 2 h, some in the future (skewed clocks), some exactly on minute edges.
      const edge = random() < 0.1;
      timeMs = edge
        ? Math.floor((NOW - random() * 2 * HOUR) / 60_000) * 60_000 + pick([-1, 0, 1])
        : Math.round(NOW - 2 * HOUR * random() + 40_000 * random() ** 8);
    } while (usedTimes.has(timeMs));
    usedTimes.add(timeMs);
    const shape = random();
    const primaryLabel = pick(["ham", "spam", "eggs"]);
    const primaryCode = pick([0, 0, 0, 0, 0, 0, 14, 3, 1, 4]);
    const sha = `sha-${requestId}`;
    const hasPrimary = shape < 0.9;
    const hasShadow = shape > 0.15;
    if (hasPrimary) {
      events.push({
        kind: "record",
        spec: {
          requestId,
          role: "primary",
          label: primaryLabel,
          spam: Math.round(random() * 1000) / 1000,
          code: primaryCode,
          latencyMs: Math.round(random() * 400) / 10,
          timeMs,
          model: pick(["v1", "v1.1"]),
          sha256: sha,
        },
      });
    }
    candidates.forEach((candidate, c) => {
      // Each candidate has its own share of the traffic: the first ~85 %, the others less.
      if (!(c === 0 ? hasShadow : random() < 0.6 / c)) {
        return;
      }
      const gap = pick([0, 5, 1000, JOIN, JOIN + 1, -JOIN, -2000, 5 * JOIN]);
      const shadowCode =
        primaryCode === 3 && random() < 0.7 ? 3 : pick([0, 0, 0, 0, 0, 0, 14, 4, 13, primaryCode]);
      events.push({
        kind: "record",
        spec: {
          requestId,
          role: "shadow",
          label: random() < 0.8 ? primaryLabel : pick(["ham", "spam", "eggs"]),
          spam: Math.round(random() * 1000) / 1000,
          code: shadowCode,
          latencyMs: Math.round(random() * 800) / 10,
          timeMs: timeMs + gap,
          model: pick(["v2", "v2.1"]),
          candidate,
          sha256: random() < 0.05 ? `other-${requestId}` : random() < 0.03 ? "" : sha,
        },
      });
      if (random() < 0.15) {
        // The mirroring caller saw the call fail: its record replaces the shadow's own, whichever comes first.
        events.push({
          kind: "record",
          spec: {
            requestId,
            role: "shadow",
            code: pick([4, 14]),
            latencyMs: 2000,
            timeMs: timeMs + pick([0, 3, 2500]),
            sha256: sha,
            source: "mirror",
            candidate,
          },
        });
      }
    });
    for (let f = 0; f < (random() < 0.4 ? 1 + Math.floor(random() * 3) : 0); f++) {
      events.push({
        kind: "feedback",
        feedback: { requestId, label: pick(["ham", "spam", "eggs"]), timeMs: timeMs + 1000 * f },
      });
    }
    if (random() < 0.05 && events.length > 0) {
      events.push(events[events.length - 1] as Event);
    }
  }
  // A random order: late partners, feedback before its records, mirror records before the shadow's own.
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [events[i], events[j]] = [events[j] as Event, events[i] as Event];
  }
  return events;
}

function apply(store: ShadowStore, events: readonly Event[], seed: number): void {
  const random = rng(seed * 7 + 1);
  let batch: RecordSpec[] = [];
  const flush = () => {
    if (batch.length > 0) {
      store.insertRecords(batch.map(stored));
      batch = [];
    }
  };
  for (const event of events) {
    if (event.kind === "record" && event.spec) {
      batch.push(event.spec);
      if (random() < 0.1) {
        flush();
      }
    } else if (event.feedback) {
      flush();
      store.upsertFeedback(event.feedback.requestId, 0, event.feedback.label, event.feedback.timeMs);
    }
  }
  flush();
}

const thresholds: ReportOptions["thresholds"] = {
  minPairs: 10,
  minAgreement: 0.5,
  maxErrorRateIncrease: 0.05,
  maxLatencyP99Ratio: 1.5,
  latencySlackMs: 2,
  minFeedback: 5,
  maxAccuracyDrop: 0.02,
  minCoverage: 0.9,
  maxShadowSilenceMs: 30_000,
};

function optionsFor(nowMs: number, windowMs: number): ReportOptions {
  return {
    nowMs,
    windowMs,
    startMs: normalisedStartMs(nowMs, windowMs),
    joinWindowMs: JOIN,
    maxDisagreements: 15,
    includeText: false,
    expectedMirrorRatio: 0.9,
    expectedMirrorRatios: new Map([["spam-lite", 0.5]]),
    thresholds,
  };
}

/** The report without what histograms approximate (checked separately) and the generation time. */
function exactPart(report: ShadowReport) {
  const role = (summary: ShadowReport["primary"]) =>
    summary && {
      ...summary,
      latencyP50Ms: 0,
      latencyP95Ms: 0,
      latencyP99Ms: 0,
      models: [...summary.models].map((m) => `${m.name}@${m.version}`).sort(),
    };
  return {
    ...report,
    generateTime: undefined,
    primary: role(report.primary),
    shadow: role(report.shadow),
    latencyP99Ratio: 0,
    scoreDelta: { ...report.scoreDelta, p50: 0, p95: 0, max: 0, mean: 0 },
    verdict: {
      ...report.verdict,
      checks: report.verdict?.checks.map((c) =>
        c.name === "latency_p99_ratio"
          ? { name: c.name }
          : {
              name: c.name,
              outcome: c.outcome,
              observed: c.observed,
              threshold: c.threshold,
              message: c.message,
            },
      ),
      reasons: [],
    },
  };
}

function expectEquivalent(store: ShadowStore, options: ReportOptions): void {
  // Every row, not only those from queryStartMs: a record whose partner is too far away is unmatched at once
  // (README), even when that partner is older than the window's start minus the join window.
  const rows = store.reportRows(Number.MIN_SAFE_INTEGER);
  const names = candidatesOfRows(rows, options);
  const where = `window ${options.windowMs} ms ending ${options.nowMs - NOW} ms after NOW`;
  expect(store.candidates(options), where).toEqual(names);
  const selections: (string | undefined)[] = [...names];
  // An unknown name (the primary's records alone) and no name (the only candidate, or FAILED_PRECONDITION), at
  // the moments that matter (NOW: before, after retention and with another join window), to keep the test short.
  if (options.nowMs !== NOW) {
    // nothing more
  } else if (names.length <= 1) {
    selections.push("nobody-knows-me", undefined);
  } else {
    selections.push("nobody-knows-me");
    // Several candidates and none named: both refuse, naming them.
    for (const report of [
      () => store.aggregateReport(options),
      () => buildReport(rows, options, (id, i, c) => store.details(id, i, c)),
    ]) {
      expect(report).toThrow(expect.objectContaining({ code: Code.FailedPrecondition }));
    }
  }
  for (const candidate of selections) {
    const asked = candidate === undefined ? options : { ...options, candidate };
    expectSame(
      store.aggregateReport(asked),
      buildReport(rows, asked, (id, i, c) => store.details(id, i, c)),
      `${where}, candidate ${candidate}`,
    );
  }
}

function expectSame(fromAggregates: ShadowReport, reference: ShadowReport, where: string): void {
  expect(exactPart(fromAggregates), where).toEqual(exactPart(reference));
  for (const role of ["primary", "shadow"] as const) {
    for (const q of ["latencyP50Ms", "latencyP95Ms", "latencyP99Ms"] as const) {
      const want = reference[role]?.[q] ?? 0;
      expect(Math.abs((fromAggregates[role]?.[q] ?? 0) - want)).toBeLessThanOrEqual(want * 0.006 + 1e-9);
    }
  }
  for (const stat of ["p50", "p95", "max"] as const) {
    expect(
      Math.abs((fromAggregates.scoreDelta?.[stat] ?? 0) - (reference.scoreDelta?.[stat] ?? 0)),
    ).toBeLessThan(6e-5);
  }
  expect(fromAggregates.scoreDelta?.mean ?? 0).toBeCloseTo(reference.scoreDelta?.mean ?? 0, 9);
  // The decision itself is exact unless a p99 sits on the latency threshold within the histogram's 0.5 %.
  const latency = reference.verdict?.checks.find((c) => c.name === "latency_p99_ratio");
  if (latency?.outcome !== CheckOutcome.WARN || Math.abs(latency.observed / latency.threshold - 1) > 0.02) {
    expect(fromAggregates.verdict?.decision).toBe(reference.verdict?.decision);
  }
}

const WINDOWS = [10_000, 60_000, 5 * 60_000, 30 * 60_000, HOUR, 3 * HOUR];
const NOWS = [NOW, NOW + 1, NOW + 45_000, NOW + 59_999];

describe("aggregates ≡ the reference report on randomized traffic", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const open = (dir: string) => new ShadowStore({ dataDir: dir, joinWindowMs: JOIN, synchronous: "NORMAL" });

  const cases: [number, readonly string[], number][] = [
    [1, ["spam"], 1500],
    [2, ["spam"], 1500],
    [3, ["spam"], 1500],
    [4, ["spam"], 1500],
    // Several candidates (issue 15): each joins the primary on its own, with its own share of the traffic.
    [5, ["spam-v2", "spam-lite"], 1000],
    [6, ["spam-lite", "ünïcode ☃ candidate", "spam-v2"], 800],
  ];
  for (const [seed, candidates, requests] of cases) {
    it(`seed ${seed}, ${candidates.length} candidate(s): every window, every moment, after a reopen and after retention`, () => {
      const dir = mkdtempSync(path.join(tmpdir(), "shadow-agg-"));
      dirs.push(dir);
      let store = open(dir);
      try {
        const events = traffic(seed, requests, candidates);
        apply(store, events.slice(0, events.length / 2), seed);
        for (const windowMs of WINDOWS) {
          expectEquivalent(store, optionsFor(NOW, windowMs));
        }
        apply(store, events.slice(events.length / 2), seed + 100);
        for (const nowMs of NOWS) {
          for (const windowMs of WINDOWS) {
            expectEquivalent(store, optionsFor(nowMs, windowMs));
          }
        }
        // The aggregates persist with the records: a reopened store answers the same.
        store.close();
        store = open(dir);
        for (const windowMs of WINDOWS) {
          expectEquivalent(store, optionsFor(NOW + 60_000, windowMs));
        }
        // Retention: the cut falls inside a minute, pairs straddle it; small steps.
        const cut = NOW - 90 * 60_000 + 17_345;
        let step = store.retentionStep(cut, 50, 16);
        while (!step.done) {
          step = store.retentionStep(cut, 50, 16);
        }
        expect(store.reportRows(0).every((r) => r.timeMs >= cut)).toBe(true);
        for (const windowMs of [5 * 60_000, HOUR, 3 * HOUR]) {
          expectEquivalent(store, optionsFor(NOW, windowMs));
        }
        // A different join window recounts the aggregates from the records.
        store.useJoinWindow(2 * JOIN);
        const wider = { ...optionsFor(NOW, HOUR), joinWindowMs: 2 * JOIN };
        expectEquivalent(store, wider);
      } finally {
        store.close();
      }
    });
  }
});
