import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import {
  bindGrpcServer,
  createGrpcJsTransport,
  createLogger,
  createRegistry,
  stopGrpcServer,
} from "@shadowmesh/common";
import {
  Decision,
  MetricsService,
  ReportPredictionsRequestSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MAX_CANDIDATES, readConfig } from "./config.js";
import { ShadowMetricsService } from "./metrics-service.js";
import { createShadowMetrics } from "./prometheus.js";
import { createMetricsServer, serviceOptionsOf } from "./server.js";
import { DATABASE_FILE, ShadowStore } from "./store.js";
import { startTestServer, type TestServer } from "./testing/harness.js";
import { type RecordSpec, stored, wire } from "./testing/records.js";

/**
 * The cap on candidates (METRICS_SERVICE_MAX_CANDIDATES): a reporter sending SHADOW records under ever new model
 * names cannot make metrics-service track more than the cap — every scrape, ListCandidates and the aggregates stay
 * bounded. Records of known candidates and the primary's are never refused.
 */

const NOW = 1_800_000_000_000;
const now = () => NOW;
const REFUSED = /^shadowmesh_records_refused_total\{[^}]*reason="too_many_candidates"[^}]*\} (\d+)$/m;

const servers: { stop(): Promise<void> }[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function start(): Promise<TestServer> {
  const server = await startTestServer({}, now);
  servers.push(server);
  return server;
}

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "metrics-cap-"));
  dirs.push(dir);
  return dir;
}

/**
 * The production server pieces (createMetricsServer) over the store in `dataDir`, on a free port, with a client;
 * `stop()` leaves the file in place, so that a second one reopens it (a restart).
 */
async function serveDir(dataDir: string) {
  const config = readConfig({
    METRICS_SERVICE_DATA_DIR: dataDir,
    METRICS_SERVICE_GRPC_PORT: "0",
    METRICS_SERVICE_METRICS_PORT: "0",
    METRICS_SERVICE_LOG_LEVEL: "silent",
  });
  const store = new ShadowStore({ dataDir });
  const registry = createRegistry("metrics-service");
  const built = createMetricsServer({
    config,
    logger: createLogger("metrics-service", "silent"),
    registry,
    store,
    now,
  });
  const port = await bindGrpcServer(built.server, "127.0.0.1", 0);
  const transport = createGrpcJsTransport({ address: `127.0.0.1:${port}` });
  const client = createClient(MetricsService, transport);
  let stopped: Promise<void> | undefined;
  const served = {
    store,
    registry,
    client,
    stop() {
      stopped ??= (async () => {
        transport.close();
        built.retention.stop();
        await built.engine.close();
        await stopGrpcServer(built.server, 2000);
        store.close();
      })();
      return stopped;
    },
  };
  servers.push(served);
  return served;
}

const name = (i: number) => `cand-${String(i).padStart(2, "0")}`;

/** The primary's records of requests `${prefix}-0` … and one candidate's records of the same requests. */
const primaries = (prefix: string, n: number, timeMs = NOW - 10_000): RecordSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    requestId: `${prefix}-${i}`,
    role: "primary",
    label: "spam",
    timeMs,
  }));
const shadows = (prefix: string, n: number, candidate: string, timeMs = NOW - 9_990): RecordSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    requestId: `${prefix}-${i}`,
    role: "shadow",
    label: "spam",
    candidate,
    timeMs,
  }));

/** What the store holds, counted from its records: SHADOW records by candidate (the truth the cap must follow). */
function truth(file: string): Map<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    return new Map(
      db.prepare("SELECT candidate, COUNT(*) FROM records WHERE role = 2 GROUP BY candidate").raw().all() as [
        string,
        number,
      ][],
    );
  } finally {
    db.close();
  }
}

const refusedOf = async (registry: { metrics(): Promise<string> }) =>
  Number((await registry.metrics()).match(REFUSED)?.[1]);

describe("METRICS_SERVICE_MAX_CANDIDATES", () => {
  it("defaults to 16 and is an integer ≥ 1", () => {
    expect(DEFAULT_MAX_CANDIDATES).toBe(16);
    expect(readConfig({}).MAX_CANDIDATES).toBe(16);
    expect(() => readConfig({ METRICS_SERVICE_MAX_CANDIDATES: "0" })).toThrow(/MAX_CANDIDATES/);
  });

  it("METRICS_SERVICE_MAX_CANDIDATES reaches the service: 2 → the third candidate is refused", async () => {
    const server = await startTestServer({ METRICS_SERVICE_MAX_CANDIDATES: "2" }, now);
    servers.push(server);
    for (const [i, expected] of [
      [1, 1],
      [2, 1],
      [3, 0],
    ] as const) {
      const answer = await server.client.reportPredictions({ records: shadows("w", 1, name(i)).map(wire) });
      expect(answer.acceptedCount).toBe(expected);
    }
    expect(await refusedOf(server.registry)).toBe(1);
    expect(server.store.storedCandidates().size).toBe(2);
  });

  it("17 candidates with the default: the 17th's records are refused and counted, the 16 others and the primary intact", async () => {
    const server = await start();
    expect(await refusedOf(server.registry)).toBe(0);
    expect(
      (await server.client.reportPredictions({ records: primaries("r", 5).map(wire) })).acceptedCount,
    ).toBe(5);
    for (let i = 1; i <= 16; i++) {
      const answer = await server.client.reportPredictions({ records: shadows("r", 5, name(i)).map(wire) });
      expect(answer.acceptedCount).toBe(5);
    }
    const refused = await server.client.reportPredictions({ records: shadows("r", 5, name(17)).map(wire) });
    expect(refused).toMatchObject({ acceptedCount: 0, duplicateCount: 0 });
    // A retry of the same batch is refused again, not let in as a duplicate.
    expect(
      (await server.client.reportPredictions({ records: shadows("r", 5, name(17)).map(wire) })).acceptedCount,
    ).toBe(0);
    expect(await refusedOf(server.registry)).toBe(10);
    const text = await server.registry.metrics();
    expect(text).not.toMatch(/shadowmesh_records_ingested_total\{[^}]*outcome="duplicate"[^}]*\}/);
    expect(text).toMatch(/^shadowmesh_records_ingested_total\{role="shadow",outcome="accepted"[^}]*\} 80$/m);

    // The primary is never refused: new primary records are stored, and pair with a known candidate.
    const more = await server.client.reportPredictions({
      records: [...primaries("late", 3), ...shadows("late", 3, name(16))].map(wire),
    });
    expect(more.acceptedCount).toBe(6);

    const listed = await server.client.listCandidates({});
    expect(listed.candidates.map((r) => r.candidate)).toEqual(
      Array.from({ length: 16 }, (_, i) => name(i + 1)),
    );
    for (const report of listed.candidates) {
      expect(report.totals?.pairCount).toBe(report.candidate === name(16) ? 8n : 5n);
    }
    // The 17th is unknown: its report holds the primary's records and no pairs.
    const seventeenth = (await server.client.getShadowReport({ candidate: name(17) })).report;
    expect(seventeenth?.totals?.pairCount).toBe(0n);
    expect(seventeenth?.verdict?.decision).toBe(Decision.INSUFFICIENT_DATA);
    expect(server.store.storedCandidates()).toEqual(
      new Map(Array.from({ length: 16 }, (_, i) => [name(i + 1), i === 15 ? 8 : 5])),
    );
    expect(truth(server.store.file)).toEqual(server.store.storedCandidates());
    expect(server.store.counts().records).toBe(5 + 16 * 5 + 6);
    // One gauge series set per stored candidate, never the refused one (the scrape at the start, before any
    // candidate, is reused for a second).
    const scrape = await vi.waitFor(
      async () => {
        const text = await server.registry.metrics();
        expect(text.match(/^shadowmesh_verdict\{[^}]*decision="HOLD"[^}]*\}/gm)).toHaveLength(16);
        return text;
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(scrape).not.toContain(name(17));
  });

  it("a batch mixing a known and a new candidate over the cap keeps the known one's records (app-service's mirror failures)", async () => {
    const server = await start();
    await server.client.reportPredictions({ records: primaries("m", 4).map(wire) });
    for (let i = 1; i <= 16; i++) {
      await server.client.reportPredictions({ records: shadows("m", 1, name(i)).map(wire) });
    }
    // What app-service sends for failed mirrored calls: MIRROR records of several candidates in one batch.
    const mirror = (requestId: string, candidate: string): RecordSpec => ({
      requestId,
      role: "shadow",
      candidate,
      code: 14,
      source: "mirror",
      timeMs: NOW - 9_990,
    });
    const answer = await server.client.reportPredictions({
      records: [
        mirror("m-1", name(3)),
        mirror("m-1", "intruder"),
        mirror("m-2", name(3)),
        mirror("m-2", "intruder"),
        // The shadow's own record of m-0 is replaced by the caller's view of the same call.
        mirror("m-0", name(3)),
      ].map(wire),
    });
    expect(answer).toMatchObject({ acceptedCount: 3, duplicateCount: 0 });
    expect(await refusedOf(server.registry)).toBe(2);
    const report = (await server.client.getShadowReport({ candidate: name(3) })).report;
    expect(report?.totals?.pairCount).toBe(3n);
    expect(server.store.storedCandidates().get(name(3))).toBe(3);
    expect(server.store.storedCandidates().has("intruder")).toBe(false);
    expect(truth(server.store.file)).toEqual(server.store.storedCandidates());
  });

  it("holds after a restart (the file reopened), and after a start that recounts an older file", async () => {
    const dir = tempDir();
    const first = await serveDir(dir);
    await first.client.reportPredictions({ records: primaries("s", 2).map(wire) });
    for (let i = 1; i <= 16; i++) {
      await first.client.reportPredictions({ records: shadows("s", 2, name(i)).map(wire) });
    }
    await first.stop();

    const second = await serveDir(dir);
    expect(second.store.storedCandidates().size).toBe(16);
    expect(
      (await second.client.reportPredictions({ records: shadows("s", 2, name(17)).map(wire) })).acceptedCount,
    ).toBe(0);
    expect(await refusedOf(second.registry)).toBe(2);
    // Known candidates still report, after the restart too.
    expect(
      (await second.client.reportPredictions({ records: shadows("t", 2, name(1)).map(wire) })).acceptedCount,
    ).toBe(2);
    expect((await second.client.listCandidates({})).candidates).toHaveLength(16);
    await second.stop();

    // A file of schema 5 has no count of candidates: opening it counts them from the records.
    const db = new Database(path.join(dir, DATABASE_FILE));
    db.exec("DROP TABLE candidates");
    db.pragma("user_version = 5");
    db.close();
    const third = await serveDir(dir);
    expect(third.store.storedCandidates()).toEqual(truth(path.join(dir, DATABASE_FILE)));
    expect(third.store.storedCandidates().size).toBe(16);
    expect(
      (await third.client.reportPredictions({ records: shadows("s", 2, name(18)).map(wire) })).acceptedCount,
    ).toBe(0);
  });

  it("a storm of 5,000 new names in one batch: 16 stored, the rest refused and counted, every scrape and list bounded", async () => {
    const server = await start();
    const storm: RecordSpec[] = Array.from({ length: 5000 }, (_, i) => ({
      requestId: `storm-${i}`,
      role: "shadow",
      label: "ham",
      // Long names too: the cap counts names, whatever their length.
      candidate: `${"x".repeat(200)}-${i}`,
      timeMs: NOW - 5000,
    }));
    const answer = await server.client.reportPredictions({
      records: [...primaries("storm", 100), ...storm].map(wire),
    });
    expect(answer).toMatchObject({ acceptedCount: 100 + 16, duplicateCount: 0 });
    expect(await refusedOf(server.registry)).toBe(5000 - 16);
    expect(server.store.storedCandidates().size).toBe(16);
    expect(truth(server.store.file).size).toBe(16);
    expect(server.store.counts().records).toBe(116);
    expect((await server.client.listCandidates({})).candidates).toHaveLength(16);
    const verdicts = (await server.registry.metrics()).match(
      /^shadowmesh_verdict\{[^}]*decision="HOLD"[^}]*\}/gm,
    );
    expect(verdicts).toHaveLength(16);
    // A second storm of other names changes nothing stored.
    const again = await server.client.reportPredictions({
      records: storm.map((r) => wire({ ...r, candidate: `${r.candidate}-again` })),
    });
    expect(again.acceptedCount).toBe(0);
    expect(await refusedOf(server.registry)).toBe(2 * 5000 - 16);
    expect(server.store.counts().records).toBe(116);
  });
});

describe("a candidate leaves the count when retention deletes its last record", () => {
  it("frees its place for a new candidate; the count follows every deletion path and survives a reopen", () => {
    const dir = tempDir();
    let store = new ShadowStore({ dataDir: dir });
    try {
      const cut = 1_799_999_990_000; // inside a minute: whole minutes before it go in bulk, the rest one by one
      const old = cut - 5 * 60_000;
      const within = Math.floor(cut / 60_000) * 60_000 + 1; // the cut's own minute, before the cut
      const records = [
        // "gone": one record well before the cut, one in the cut's own minute: both paths of the retention.
        stored({ requestId: "g-1", role: "primary", timeMs: old }),
        stored({ requestId: "g-1", role: "shadow", candidate: "gone", timeMs: old + 5 }),
        stored({ requestId: "g-2", role: "shadow", candidate: "gone", timeMs: within }),
        // "stays": one old record and one after the cut.
        stored({ requestId: "s-1", role: "shadow", candidate: "stays", timeMs: old }),
        stored({ requestId: "s-2", role: "primary", timeMs: cut + 1000 }),
        stored({ requestId: "s-2", role: "shadow", candidate: "stays", timeMs: cut + 1005 }),
        // A pair straddling the cut's minute: the primary before it, the shadow after.
        stored({ requestId: "x-1", role: "primary", timeMs: within - 2 }),
        stored({ requestId: "x-1", role: "shadow", candidate: "straddles", timeMs: cut + 10 }),
      ];
      expect(store.insertRecords(records, 3).accepted).toBe(records.length);
      expect(store.storedCandidates()).toEqual(
        new Map([
          ["gone", 2],
          ["stays", 2],
          ["straddles", 1],
        ]),
      );
      // At the cap: a fourth is refused.
      const newcomer = stored({
        requestId: "n-1",
        role: "shadow",
        candidate: "newcomer",
        timeMs: cut + 2000,
      });
      expect(store.insertRecords([newcomer], 3)).toMatchObject({
        accepted: 0,
        refused: new Map([["newcomer", 1]]),
      });

      // Steps of one row each: every path deletes in several transactions.
      let steps = 0;
      while (!store.retentionStep(cut, 1).done) {
        steps++;
        expect(steps).toBeLessThan(20);
      }
      expect(store.storedCandidates()).toEqual(
        new Map([
          ["stays", 1],
          ["straddles", 1],
        ]),
      );
      expect(truth(store.file)).toEqual(store.storedCandidates());
      expect(store.insertRecords([newcomer], 3).accepted).toBe(1);
      store.close();
      store = new ShadowStore({ dataDir: dir });
      expect(store.storedCandidates()).toEqual(
        new Map([
          ["newcomer", 1],
          ["stays", 1],
          ["straddles", 1],
        ]),
      );
      expect(store.insertRecords([{ ...newcomer, requestId: "n-2", modelName: "fifth" }], 3).refused).toEqual(
        new Map([["fifth", 1]]),
      );
      // Another join window recounts the aggregates from the records, and the candidates with them.
      store.close();
      store = new ShadowStore({ dataDir: dir, joinWindowMs: 30_000 });
      expect(store.storedCandidates()).toEqual(truth(store.file));
      expect(store.storedCandidates().size).toBe(3);
    } finally {
      store.close();
    }
  });
});

describe("warnings about refused candidates", () => {
  it("one line per batch naming the new refused names (truncated, a few), at most once per name per minute", () => {
    const dir = tempDir();
    const store = new ShadowStore({ dataDir: dir });
    const lines: {
      level: number;
      msg: string;
      candidates?: string[];
      moreCandidates?: number;
      records?: number;
    }[] = [];
    const logger = createLogger("metrics-service", "info", {
      write: (line: string) => lines.push(JSON.parse(line)),
    });
    let clock = NOW;
    let sent = 0;
    const registry = createRegistry("metrics-service");
    const observer = createShadowMetrics({ registry, lastReportDurationMs: () => 0, windowMs: 3_600_000 });
    const service = new ShadowMetricsService({
      store,
      options: { ...serviceOptionsOf(readConfig({})), maxCandidates: 2 },
      observer,
      logger,
      now: () => clock,
    });
    try {
      const send = (names: string[]) =>
        service.reportPredictions(
          create(ReportPredictionsRequestSchema, {
            records: names.map((candidate, i) =>
              wire({ requestId: `w-${sent++}-${i}`, role: "shadow", candidate, timeMs: clock }),
            ),
          }),
        );
      expect(send(["a", "b"]).acceptedCount).toBe(2);
      expect(lines).toHaveLength(0);
      const long = "L".repeat(256);
      expect(send(["a", long, "c"]).acceptedCount).toBe(1);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 40, records: 2 });
      expect(lines[0]?.candidates).toEqual([`${"L".repeat(64)}…`, "c"]);
      expect(lines[0]?.msg).toMatch(/2 new candidates refused: 2 candidates are stored already/);
      // The same names within the minute: counted, not logged again; a new name is.
      clock += 30_000;
      send([long, "c"]);
      expect(lines).toHaveLength(1);
      send(["c", "d"]);
      expect(lines).toHaveLength(2);
      expect(lines[1]?.candidates).toEqual(["d"]);
      expect(lines[1]?.msg).toContain('a new candidate ("d") refused');
      // A minute later, the name is warned about again.
      clock += 30_000;
      send(["c"]);
      expect(lines).toHaveLength(3);
      // A storm: one line, ten names shown and the rest as a count.
      send(Array.from({ length: 3000 }, (_, i) => `storm-${i}`));
      expect(lines).toHaveLength(4);
      expect(lines[3]?.candidates).toHaveLength(10);
      expect(lines[3]?.moreCandidates).toBe(2990);
      expect(store.storedCandidates()).toEqual(
        new Map([
          ["a", 2],
          ["b", 1],
        ]),
      );
    } finally {
      store.close();
    }
  });
});
