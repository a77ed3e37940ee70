import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLogger } from "@shadowmesh/common";
import { afterEach, describe, expect, it } from "vitest";
import { startRetention } from "./retention.js";
import { ShadowStore } from "./store.js";
import { stored } from "./testing/records.js";
import { pages, recordsSince } from "./testing/store-testing.js";

describe("retention", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sweeps soon after start and on demand, deleting only what is older than the retention", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shadow-retention-"));
    dirs.push(dir);
    const store = new ShadowStore({ dataDir: dir });
    const hour = 3_600_000;
    let now = 100 * hour;
    store.insertRecords([
      stored({ requestId: "old", role: "primary", timeMs: now - 3 * hour }),
      stored({ requestId: "new", role: "primary", timeMs: now - hour }),
    ]);
    store.upsertFeedback("old", 0, "spam", now - 3 * hour);
    const deleted: { records: number; feedback: number }[] = [];
    const retention = startRetention({
      store,
      retentionMs: 2 * hour,
      intervalMs: 60_000,
      logger: createLogger("metrics-service", "silent"),
      onDeleted: (d) => deleted.push(d),
      now: () => now,
    });
    try {
      // Start-up never waits for the first sweep: it runs on a later turn of the event loop.
      expect(deleted).toEqual([]);
      await expect.poll(() => deleted, { timeout: 5000 }).toEqual([{ records: 1, feedback: 1 }]);
      expect(recordsSince(store, 0).map((r) => r.requestId)).toEqual(["new"]);
      now += 2 * hour;
      expect(await retention.sweep()).toEqual({ records: 1, feedback: 0 });
      expect(store.counts()).toEqual({ records: 0, feedback: 0 });
    } finally {
      retention.stop();
      store.close();
    }
  });

  it("deletes a large backlog in small steps that let the event loop run, and gives the space back", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shadow-retention-"));
    dirs.push(dir);
    const store = new ShadowStore({ dataDir: dir, synchronous: "NORMAL" });
    const hour = 3_600_000;
    const now = 100 * hour;
    for (let batch = 0; batch < 20; batch++) {
      store.insertRecords(
        Array.from({ length: 1000 }, (_, i) =>
          stored({
            requestId: `old-${batch}-${i}`,
            role: i % 2 ? "shadow" : "primary",
            timeMs: now - 5 * hour + i,
          }),
        ),
      );
    }
    store.insertRecords([stored({ requestId: "new", role: "primary", timeMs: now - hour })]);
    const before = pages(store);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const retention = startRetention({
      store,
      retentionMs: 2 * hour,
      intervalMs: 3_600_000,
      logger: createLogger("metrics-service", "silent"),
      now: () => now,
      chunk: 500,
    });
    try {
      const swept = await retention.sweep();
      clearInterval(ticker);
      expect(swept.records).toBe(20_000);
      expect(store.counts().records).toBe(1);
      // 40 steps of 500 rows: the event loop ran between them (timers fired during the sweep).
      expect(ticks).toBeGreaterThan(5);
      const after = pages(store);
      expect(after.total).toBeLessThan(before.total / 2);
    } finally {
      clearInterval(ticker);
      retention.stop();
      store.close();
    }
  });
});
