/**
 * How long a store written by schema version 4 (one shadow) takes to open with this version (schema 5: the records
 * copied once with their candidate, the aggregates recounted per candidate). Records shaped like
 * `bench:metrics`'s (UUIDv7-like keys, ~230-byte records, pairs 200 ms apart ending now).
 *
 *   npx tsx services/metrics-service/src/bench/migration-bench.ts [pairs]   (default 500 000 pairs = 1 M records)
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { DATABASE_FILE, ShadowStore } from "../store.js";
import { createV4Schema } from "../testing/v4-schema.js";

const pairs = Number(process.argv[2] ?? 500_000);
const dir = mkdtempSync(path.join(tmpdir(), "shadow-migration-bench-"));
const file = path.join(dir, DATABASE_FILE);
try {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  createV4Schema(db);
  const insert = db.prepare(
    "INSERT INTO records VALUES (?, 0, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, 80, NULL, ?, ?, 1)",
  );
  const now = Date.now();
  const started = performance.now();
  const write = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const t = now - (pairs - i) * 200;
      const id = `${t.toString(16).padStart(12, "0")}-7000-8000-${randomBytes(6).toString("hex")}`;
      const spam = Math.random();
      const shadowSpam = Math.min(1, Math.max(0, spam + (Math.random() - 0.5) * 0.1));
      const vector = (p: number) =>
        JSON.stringify([
          ["ham", 1 - p],
          ["spam", p],
        ]);
      const sha = randomBytes(32).toString("hex");
      const delta = Math.abs(spam - shadowSpam);
      insert.run(
        id,
        1,
        "spam",
        "1.0.0",
        spam > 0.5 ? "spam" : "ham",
        vector(spam),
        0.5,
        t,
        t + 50,
        sha,
        "p-0",
        delta,
      );
      insert.run(
        id,
        2,
        "spam",
        "2.0.0",
        shadowSpam > 0.5 ? "spam" : "ham",
        vector(shadowSpam),
        0.7,
        t + 2,
        t + 50,
        sha,
        "s-0",
        delta,
      );
    }
  });
  for (let i = 0; i < pairs; i += 10_000) {
    write(i, Math.min(pairs, i + 10_000));
  }
  db.pragma("user_version = 4");
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  console.log(
    `wrote a version 4 file: ${2 * pairs} records, ${(statSync(file).size / 1e6).toFixed(0)} MB, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const opening = performance.now();
  const store = new ShadowStore({ dataDir: dir, synchronous: "NORMAL" });
  const openMs = performance.now() - opening;
  const rss = process.memoryUsage().rss;
  const options = {
    nowMs: now,
    windowMs: 3_600_000,
    joinWindowMs: 60_000,
    maxDisagreements: 20,
    includeText: false,
    expectedMirrorRatio: 1,
    thresholds: {
      minPairs: 100,
      minAgreement: 0.9,
      maxErrorRateIncrease: 0.01,
      maxLatencyP99Ratio: 1.5,
      latencySlackMs: 2,
      minFeedback: 30,
      maxAccuracyDrop: 0.02,
      minCoverage: 0.9,
      maxShadowSilenceMs: 30_000,
    },
  };
  // The recount alone (what a changed join window costs too): the rest of the migration is the copy.
  const recounting = performance.now();
  store.useJoinWindow(61_000);
  const recountMs = performance.now() - recounting;
  store.useJoinWindow(60_000);
  const report = store.aggregateReport({
    ...options,
    startMs: Math.floor((now - 3_600_000) / 60_000) * 60_000,
  });
  store.close();
  console.log(
    `migrated to version 5 in ${(openMs / 1000).toFixed(1)} s (${((openMs * 1000) / (2 * pairs)).toFixed(1)} µs per record; of it the aggregates' recount ${(recountMs / 1000).toFixed(1)} s), RSS ${(rss / 1e6).toFixed(0)} MB; ` +
      `the 1 h report after it: candidate ${JSON.stringify(report.candidate)}, ${report.totals?.pairCount} pairs`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
