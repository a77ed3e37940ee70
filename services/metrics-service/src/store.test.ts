import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DATABASE_FILE, ShadowStore } from "./store.js";
import { stored } from "./testing/records.js";
import { deleteOlderThan, recordsSince } from "./testing/store-testing.js";
import { createV4Schema } from "./testing/v4-schema.js";

describe("ShadowStore", () => {
  let dir: string;
  let store: ShadowStore;
  const extraDirs: string[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "shadow-store-"));
    store = new ShadowStore({ dataDir: dir });
  });

  afterEach(() => {
    store.close();
    for (const d of [dir, ...extraDirs.splice(0)]) {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it("stores a record once per (request id, batch index, role), so a retried batch never double counts", () => {
    const batch = [
      stored({ requestId: "r1", role: "primary", timeMs: 1000 }),
      stored({ requestId: "r1", role: "shadow", timeMs: 1000 }),
      stored({ requestId: "r1", batchIndex: 1, role: "primary", timeMs: 1000 }),
    ];
    expect(store.insertRecords(batch)).toEqual({
      accepted: 3,
      duplicates: 0,
      acceptedByRole: { 1: 2, 2: 1 },
      replaced: 0,
    });
    expect(store.insertRecords(batch)).toEqual({
      accepted: 0,
      duplicates: 3,
      acceptedByRole: { 1: 0, 2: 0 },
      replaced: 0,
    });
    expect(store.counts().records).toBe(3);
  });

  it("keeps the first version of a record when a different one arrives with the same key", () => {
    store.insertRecords([stored({ requestId: "r", role: "primary", label: "spam", timeMs: 1000 })]);
    store.insertRecords([stored({ requestId: "r", role: "primary", label: "ham", timeMs: 2000 })]);
    const [record] = recordsSince(store, 0);
    expect(record?.label).toBe("spam");
    expect(record?.probabilities).toEqual([
      ["ham", expect.closeTo(0.1)],
      ["spam", 0.9],
    ]);
  });

  it("keeps the latest feedback per request and reports whether the request is known", () => {
    store.insertRecords([stored({ requestId: "known", role: "primary", timeMs: 1000 })]);
    expect(store.upsertFeedback("known", 0, "spam", 5000)).toBe(true);
    expect(store.upsertFeedback("known", 0, "ham", 6000)).toBe(true);
    expect(store.upsertFeedback("unknown", 0, "spam", 6000)).toBe(false);
    expect(store.counts().feedback).toBe(2);
    expect(recordsSince(store, 0)[0]?.feedbackLabel).toBe("ham");
    // Feedback that came first joins the records that come later.
    store.insertRecords([stored({ requestId: "unknown", role: "shadow", timeMs: 1000 })]);
    expect(recordsSince(store, 0).find((r) => r.requestId === "unknown")?.feedbackLabel).toBe("spam");
  });

  it("returns records from a time on, including ones stamped in the future", () => {
    store.insertRecords([
      stored({ requestId: "old", role: "primary", timeMs: 1000 }),
      stored({ requestId: "new", role: "primary", timeMs: 3000 }),
      stored({ requestId: "future", role: "primary", timeMs: 9_999_999_999_999 }),
    ]);
    expect(
      recordsSince(store, 2000)
        .map((r) => r.requestId)
        .sort(),
    ).toEqual(["future", "new"]);
  });

  it("deletes records and feedback older than the retention, in chunks, and signals the change", () => {
    const records = Array.from({ length: 25 }, (_, i) =>
      stored({ requestId: `r${i}`, role: "primary", timeMs: i < 20 ? 1000 : 5000 }),
    );
    store.insertRecords(records);
    store.upsertFeedback("r0", 0, "ham", 1000);
    store.upsertFeedback("r21", 0, "ham", 5000);
    let changes = 0;
    const unsubscribe = store.onChange(() => changes++);
    expect(deleteOlderThan(store, 2000, 7)).toEqual({ records: 20, feedback: 1 });
    expect(store.counts()).toEqual({ records: 5, feedback: 1 });
    // Every step that deleted something signalled it (the retention's steps notify watchers); one with nothing
    // to delete does not.
    expect(changes).toBeGreaterThan(0);
    const signalled = changes;
    expect(deleteOlderThan(store, 2000)).toEqual({ records: 0, feedback: 0 });
    expect(changes).toBe(signalled);
    unsubscribe();
  });

  it("counts changes only for writes that changed something", () => {
    const before = store.version;
    store.insertRecords([stored({ requestId: "v", role: "primary", timeMs: 1 })]);
    store.insertRecords([stored({ requestId: "v", role: "primary", timeMs: 1 })]);
    expect(store.version).toBe(before + 1);
  });

  it("persists across a reopen, in WAL mode", () => {
    store.insertRecords([stored({ requestId: "kept", role: "primary", timeMs: 1000 })]);
    store.upsertFeedback("kept", 0, "spam", 1000);
    store.close();
    store = new ShadowStore({ dataDir: dir });
    expect(store.counts()).toEqual({ records: 1, feedback: 1 });
    const db = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.close();
  });

  it("computes a pair's score delta once both calls succeeded, whichever record arrives first", () => {
    store.insertRecords([
      stored({ requestId: "s-first", role: "shadow", label: "spam", spam: 0.7, timeMs: 1 }),
    ]);
    expect(store.reportRows(0)[0]?.scoreDelta).toBeNull();
    store.insertRecords([
      stored({ requestId: "s-first", role: "primary", label: "spam", spam: 0.9, timeMs: 1 }),
    ]);
    store.insertRecords([
      stored({ requestId: "p-first", role: "primary", label: "ham", spam: 0.1, timeMs: 1 }),
      stored({ requestId: "p-first", role: "shadow", label: "spam", spam: 0.6, timeMs: 1 }),
      stored({ requestId: "failed", role: "primary", label: "ham", timeMs: 1 }),
      stored({ requestId: "failed", role: "shadow", code: 14, timeMs: 1 }),
    ]);
    const delta = Object.fromEntries(
      store.reportRows(0).map((r) => [`${r.requestId}/${r.role}`, r.scoreDelta]),
    );
    // The delta lives on the shadow's record (each candidate's own); the primary's stays null.
    expect(delta["s-first/1"]).toBeNull();
    expect(delta["s-first/2"]).toBeCloseTo(0.2);
    expect(delta["p-first/1"]).toBeNull();
    expect(delta["p-first/2"]).toBeCloseTo(0.5);
    expect(delta["failed/1"]).toBeNull();
    expect(delta["failed/2"]).toBeNull();
  });

  it("reads probabilities and inputs of one request for a disagreement", () => {
    store.insertRecords([
      stored({ requestId: "d", role: "primary", label: "spam", spam: 0.8, timeMs: 1, text: "hello" }),
      stored({ requestId: "d", role: "shadow", label: "ham", spam: 0.3, timeMs: 1 }),
    ]);
    const details = store.details("d", 0, "spam");
    expect(details[1]?.probabilities.map(([label]) => label)).toEqual(["ham", "spam"]);
    expect(details[1]?.inputText).toBe("hello");
    expect(details[2]?.inputSha256).toBe("sha-d");
    expect(store.details("nobody", 0, "spam")).toEqual({});
  });

  it("migrates a version 1 database, computing the score delta of the pairs it holds", () => {
    store.insertRecords([
      stored({ requestId: "old", role: "primary", label: "spam", spam: 0.9, timeMs: 1 }),
      stored({ requestId: "old", role: "shadow", label: "ham", spam: 0.4, timeMs: 1 }),
    ]);
    store.close();
    const db = new Database(path.join(dir, DATABASE_FILE));
    db.exec("ALTER TABLE records DROP COLUMN score_delta");
    db.exec("ALTER TABLE records DROP COLUMN source");
    db.pragma("user_version = 1");
    db.close();
    store = new ShadowStore({ dataDir: dir });
    expect(store.reportRows(0).map((r) => [r.role, r.scoreDelta])).toEqual([
      [1, null],
      [2, expect.closeTo(0.5)],
    ]);
  });

  it("opens a file written by schema version 3 (issue 10) and finds every pair in its report", () => {
    store.close();
    rmSync(path.join(dir, DATABASE_FILE), { force: true });
    // Version 3's schema and writes, frozen here as that version of metrics-service made them.
    const db = new Database(path.join(dir, DATABASE_FILE));
    db.pragma("journal_mode = WAL");
    db.exec(`CREATE TABLE records (
      request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, role INTEGER NOT NULL CHECK (role IN (1, 2)),
      model_name TEXT NOT NULL, model_version TEXT NOT NULL, label TEXT NOT NULL, probabilities TEXT NOT NULL,
      latency_ms REAL NOT NULL, grpc_code INTEGER NOT NULL, time_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
      input_sha256 TEXT NOT NULL, input_length INTEGER NOT NULL, input_text TEXT, instance TEXT NOT NULL,
      score_delta REAL, source INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (request_id, batch_index, role))`);
    db.exec("CREATE INDEX records_by_time ON records (time_ms)");
    db.exec(`CREATE TABLE feedback (request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, label TEXT NOT NULL,
      time_ms INTEGER NOT NULL, PRIMARY KEY (request_id, batch_index))`);
    db.exec("CREATE INDEX feedback_by_time ON feedback (time_ms)");
    const insert = db.prepare(
      `INSERT INTO records VALUES (?, ?, ?, 'spam', ?, ?, ?, 1.5, ?, ?, ?, ?, 42, NULL, 'pod', ?, ?)`,
    );
    const vector = (spam: number) =>
      JSON.stringify([
        ["ham", 1 - spam],
        ["spam", spam],
      ]);
    const t0 = 1_800_000_000_000;
    for (let i = 0; i < 300; i++) {
      const id = `0190f1e2-0000-7000-8000-${String(i).padStart(12, "0")}`;
      const label = i % 10 === 0 ? "ham" : "spam";
      insert.run(id, 0, 1, "1.0.0", "spam", vector(0.9), 0, t0 + i * 1000, t0 + i * 1000, `sha-${i}`, 0.1, 1);
      insert.run(
        id,
        0,
        2,
        "2.0.0",
        label,
        vector(0.8),
        0,
        t0 + i * 1000 + 3,
        t0 + i * 1000,
        `sha-${i}`,
        0.1,
        1,
      );
    }
    // A MIRROR record that replaced the shadow's own, and an unmatched primary.
    insert.run("mirrored", 0, 1, "1.0.0", "spam", vector(0.9), 0, t0 + 5, t0 + 5, "sha-m", null, 1);
    insert.run("mirrored", 0, 2, "", "", "[]", 4, t0 + 2005, t0 + 2005, "sha-m", null, 2);
    insert.run("alone", 0, 1, "1.0.0", "spam", vector(0.9), 0, t0 + 7, t0 + 7, "sha-a", null, 1);
    db.prepare("INSERT INTO feedback VALUES ('0190f1e2-0000-7000-8000-000000000010', 0, 'spam', 2000)").run();
    db.pragma("user_version = 3");
    db.close();

    store = new ShadowStore({ dataDir: dir });
    const options = {
      nowMs: t0 + 3_600_000,
      windowMs: 3_600_000,
      startMs: t0 - 60_000,
      joinWindowMs: 60_000,
      maxDisagreements: 100,
      includeText: false,
      expectedMirrorRatio: 1,
      thresholds: {
        minPairs: 10,
        minAgreement: 0.5,
        maxErrorRateIncrease: 0.01,
        maxLatencyP99Ratio: 1.5,
        latencySlackMs: 2,
        minFeedback: 1,
        maxAccuracyDrop: 0.02,
        minCoverage: 0.9,
        maxShadowSilenceMs: 30_000,
      },
    };
    const report = store.aggregateReport(options);
    expect(report.totals?.pairCount).toBe(301n);
    expect(report.totals?.judgedPairCount).toBe(301n);
    expect(report.agreement?.pairCount).toBe(300n);
    expect(report.agreement?.agreeingCount).toBe(270n);
    expect(report.errors.map((e) => [e.role, e.grpcStatusCode, e.count])).toEqual([[2, 4, 1n]]);
    expect(report.totals?.unmatchedPrimaryCount).toBe(1n);
    expect(report.recentDisagreements).toHaveLength(30);
    expect(report.recentDisagreements.find((d) => d.requestId.endsWith("000000000010"))?.feedbackLabel).toBe(
      "spam",
    );
    expect(report.primary?.feedbackCount).toBe(1n);
    expect(report.shadow?.correctCount).toBe(0n);
    expect(store.counts()).toEqual({ records: 603, feedback: 1 });
    // A record arriving after the migration joins the migrated ones.
    store.insertRecords([stored({ requestId: "alone", role: "shadow", label: "spam", timeMs: t0 + 9 })]);
    expect(store.aggregateReport(options).totals?.pairCount).toBe(302n);
  });

  it("migrates a file written by schema version 4 (one shadow): every pair found, its candidate the shadow's model name", () => {
    store.close();
    rmSync(path.join(dir, DATABASE_FILE), { force: true });
    // Version 4's schema and writes, frozen here as that version of metrics-service made them: one shadow per
    // request, the score delta on both records, the aggregates and notable lists keyed without a candidate.
    const db = new Database(path.join(dir, DATABASE_FILE));
    db.pragma("journal_mode = WAL");
    createV4Schema(db);
    db.exec(`INSERT INTO aggregates VALUES (1, 0, '{"stale":true}')`);
    db.exec("INSERT INTO notable VALUES ('stale', 0, 1, 0)");
    const insert = db.prepare(
      "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, 1.5, ?, ?, ?, ?, 42, NULL, 'pod', ?, ?)",
    );
    const vector = (spam: number) =>
      JSON.stringify([
        ["ham", 1 - spam],
        ["spam", spam],
      ]);
    const t0 = 1_800_000_000_000;
    // The first 200 requests were shadowed by spam-v2, the next 100 by spam-lite (the shadow was swapped).
    for (let i = 0; i < 300; i++) {
      const id = `0190f1e2-0000-7000-8000-${String(i).padStart(12, "0")}`;
      const candidate = i < 200 ? "spam-v2" : "spam-lite";
      const label = i % 10 === 0 ? "ham" : "spam";
      const at = t0 + i * 1000;
      insert.run(id, 0, 1, "spam-v1", "1.0.0", "spam", vector(0.9), 0, at, at, `sha-${i}`, 0.1, 1);
      insert.run(id, 0, 2, candidate, "2.0.0", label, vector(0.8), 0, at + 3, at, `sha-${i}`, 0.1, 1);
    }
    // A MIRROR record (app-service's, with the configured candidate's name) and an unmatched primary.
    insert.run(
      "mirrored",
      0,
      1,
      "spam-v1",
      "1.0.0",
      "spam",
      vector(0.9),
      0,
      t0 + 5,
      t0 + 5,
      "sha-m",
      null,
      1,
    );
    insert.run("mirrored", 0, 2, "spam-v2", "", "", "[]", 4, t0 + 2005, t0 + 2005, "sha-m", null, 2);
    insert.run("alone", 0, 1, "spam-v1", "1.0.0", "spam", vector(0.9), 0, t0 + 7, t0 + 7, "sha-a", null, 1);
    db.prepare("INSERT INTO feedback VALUES ('0190f1e2-0000-7000-8000-000000000010', 0, 'spam', 2000)").run();
    db.pragma("user_version = 4");
    db.close();

    store = new ShadowStore({ dataDir: dir });
    const options = {
      nowMs: t0 + 3_600_000,
      windowMs: 3_600_000,
      startMs: t0 - 60_000,
      joinWindowMs: 60_000,
      maxDisagreements: 100,
      includeText: false,
      expectedMirrorRatio: 1,
      thresholds: {
        minPairs: 10,
        minAgreement: 0.5,
        maxErrorRateIncrease: 0.01,
        maxLatencyP99Ratio: 1.5,
        latencySlackMs: 2,
        minFeedback: 1,
        maxAccuracyDrop: 0.02,
        minCoverage: 0.9,
        maxShadowSilenceMs: 30_000,
      },
    };
    expect(store.counts()).toEqual({ records: 603, feedback: 1 });
    expect(store.candidates(options)).toEqual(["spam-lite", "spam-v2"]);
    const v2 = store.aggregateReport({ ...options, candidate: "spam-v2" });
    expect(v2.candidate).toBe("spam-v2");
    expect(v2.totals?.pairCount).toBe(201n);
    expect(v2.agreement?.pairCount).toBe(200n);
    expect(v2.agreement?.agreeingCount).toBe(180n);
    expect(v2.errors.map((e) => [e.role, e.grpcStatusCode, e.count])).toEqual([[2, 4, 1n]]);
    expect(v2.totals?.unmatchedPrimaryCount).toBe(101n);
    expect(v2.recentDisagreements).toHaveLength(20);
    expect(v2.recentDisagreements.find((d) => d.requestId.endsWith("000000000010"))?.feedbackLabel).toBe(
      "spam",
    );
    expect(v2.shadow?.models.map((m) => `${m.name}@${m.version}`)).toEqual(["spam-v2@2.0.0", "spam-v2@"]);
    const lite = store.aggregateReport({ ...options, candidate: "spam-lite" });
    expect(lite.totals?.pairCount).toBe(100n);
    expect(lite.agreement?.agreeingCount).toBe(90n);
    expect(lite.totals?.unmatchedPrimaryCount).toBe(202n);
    expect(lite.recentDisagreements).toHaveLength(10);
    // The score delta moved to the shadow's record; the primary's is gone.
    const rows = store.reportRows(0);
    expect(rows.filter((r) => r.role === 1).every((r) => r.scoreDelta === null && r.candidate === "")).toBe(
      true,
    );
    expect(rows.filter((r) => r.role === 2 && r.scoreDelta !== null)).toHaveLength(300);
    // Two candidates and none named: FAILED_PRECONDITION naming both.
    expect(() => store.aggregateReport(options)).toThrow(/2 candidates \("spam-lite", "spam-v2"\)/);
    // A record arriving after the migration joins the migrated primary, for its own candidate only.
    store.insertRecords([
      stored({ requestId: "alone", role: "shadow", label: "spam", timeMs: t0 + 9, candidate: "spam-lite" }),
    ]);
    expect(store.aggregateReport({ ...options, candidate: "spam-lite" }).totals?.pairCount).toBe(101n);
    expect(store.aggregateReport({ ...options, candidate: "spam-v2" }).totals?.pairCount).toBe(201n);
    // A second candidate's record for a key spam-v2 already holds is stored beside it, not a duplicate.
    const again = store.insertRecords([
      stored({
        requestId: "0190f1e2-0000-7000-8000-000000000001",
        role: "shadow",
        timeMs: t0 + 1003,
        candidate: "spam-lite",
      }),
    ]);
    expect(again.accepted).toBe(1);
    expect(store.aggregateReport({ ...options, candidate: "spam-lite" }).totals?.pairCount).toBe(102n);
  });

  it("opens a file written by schema version 2 (before record sources) and still finds every record", () => {
    store.close();
    rmSync(path.join(dir, DATABASE_FILE), { force: true });
    // Version 2's schema and writes, frozen here as that version of metrics-service made them.
    const db = new Database(path.join(dir, DATABASE_FILE));
    db.pragma("journal_mode = WAL");
    db.exec(`CREATE TABLE records (
      request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, role INTEGER NOT NULL CHECK (role IN (1, 2)),
      model_name TEXT NOT NULL, model_version TEXT NOT NULL, label TEXT NOT NULL, probabilities TEXT NOT NULL,
      latency_ms REAL NOT NULL, grpc_code INTEGER NOT NULL, time_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
      input_sha256 TEXT NOT NULL, input_length INTEGER NOT NULL, input_text TEXT, instance TEXT NOT NULL,
      score_delta REAL,
      PRIMARY KEY (request_id, batch_index, role))`);
    db.exec("CREATE INDEX records_by_time ON records (time_ms)");
    db.exec(`CREATE TABLE feedback (request_id TEXT NOT NULL, batch_index INTEGER NOT NULL, label TEXT NOT NULL,
      time_ms INTEGER NOT NULL, PRIMARY KEY (request_id, batch_index))`);
    db.exec("CREATE INDEX feedback_by_time ON feedback (time_ms)");
    const insert = db.prepare(
      `INSERT INTO records VALUES (?, ?, ?, 'spam', ?, ?, ?, 1.5, ?, ?, ?, ?, 42, NULL, 'pod', ?)`,
    );
    const probabilities = (spam: number) =>
      JSON.stringify([
        ["ham", 1 - spam],
        ["spam", spam],
      ]);
    for (let i = 0; i < 50; i++) {
      insert.run(
        `old-${i}`,
        0,
        1,
        "1.0.0",
        "spam",
        probabilities(0.9),
        0,
        1000 + i,
        1000 + i,
        `sha-${i}`,
        0.1,
      );
      insert.run(
        `old-${i}`,
        0,
        2,
        "2.0.0",
        "spam",
        probabilities(0.8),
        0,
        1001 + i,
        1001 + i,
        `sha-${i}`,
        0.1,
      );
    }
    insert.run("old-failed", 0, 2, "2.0.0", "", "[]", 14, 1000, 1000, "sha-f", null);
    db.prepare("INSERT INTO feedback VALUES ('old-3', 0, 'spam', 2000)").run();
    db.pragma("user_version = 2");
    db.close();

    store = new ShadowStore({ dataDir: dir });
    expect(store.counts()).toEqual({ records: 101, feedback: 1 });
    const rows = store.reportRows(0);
    expect(rows).toHaveLength(101);
    expect(new Set(rows.map((r) => r.source))).toEqual(new Set([0]));
    expect(rows.find((r) => r.requestId === "old-3" && r.role === 2)?.feedbackLabel).toBe("spam");
    expect(rows.find((r) => r.requestId === "old-7" && r.role === 2)?.scoreDelta).toBeCloseTo(0.1);
    expect(rows.find((r) => r.requestId === "old-failed")?.grpcCode).toBe(14);
    // An old (UNSPECIFIED) record gives way to a MIRROR record of the same call, as a MODEL_SERVICE one would.
    const mirror = {
      ...stored({ requestId: "old-9", role: "shadow", code: 4, timeMs: 1009, source: "mirror" }),
    };
    expect(store.insertRecords([mirror]).replaced).toBe(1);
    expect(
      store
        .reportRows(0)
        .filter((r) => r.requestId === "old-9")
        .map((r) => [r.role, r.grpcCode, r.scoreDelta]),
    ).toEqual(
      expect.arrayContaining([
        [1, 0, null],
        [2, 4, null],
      ]),
    );
    expect(store.requestLabels("old-1")).toEqual(new Set(["ham", "spam"]));
  });

  it("gives a MIRROR record precedence over the shadow's own record, never the reverse", () => {
    const own = stored({ requestId: "m", role: "shadow", label: "ham", timeMs: 1000 });
    const mirror = stored({ requestId: "m", role: "shadow", code: 4, timeMs: 1002, source: "mirror" });
    const unspecified = { ...own, source: 0 as const };
    expect(store.insertRecords([own])).toMatchObject({ accepted: 1, replaced: 0 });
    expect(store.insertRecords([mirror])).toMatchObject({ accepted: 1, replaced: 1 });
    expect(store.insertRecords([mirror])).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(store.insertRecords([own, unspecified])).toMatchObject({ accepted: 0, duplicates: 2 });
    expect(recordsSince(store, 0).map((r) => [r.grpcCode, r.source])).toEqual([[4, 2]]);
    // A MIRROR record for the primary role is stored like any other (the service refuses them).
    const other = stored({
      requestId: "u",
      role: "shadow",
      label: "ham",
      timeMs: 1000,
      source: "unspecified",
    });
    store.insertRecords([other]);
    expect(store.insertRecords([{ ...mirror, requestId: "u" }]).replaced).toBe(1);
  });

  it("refuses a database written by a newer version", () => {
    store.close();
    const db = new Database(path.join(dir, DATABASE_FILE));
    db.pragma("user_version = 99");
    db.close();
    expect(() => new ShadowStore({ dataDir: dir })).toThrow(/schema version 99, newer than/);
    const other = mkdtempSync(path.join(tmpdir(), "shadow-store-"));
    extraDirs.push(other);
    store = new ShadowStore({ dataDir: other });
  });
});
