import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLogger } from "@shadowmesh/common";
import { afterEach, describe, expect, it } from "vitest";
import { startRetention } from "./retention.js";
import { ShadowStore } from "./store.js";
import { stored } from "./testing/records.js";

describe("retention", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sweeps at start and on demand, deleting only what is older than the retention", () => {
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
      expect(deleted).toEqual([{ records: 1, feedback: 1 }]);
      expect(store.recordsSince(0).map((r) => r.requestId)).toEqual(["new"]);
      now += 2 * hour;
      expect(retention.sweep()).toEqual({ records: 1, feedback: 0 });
      expect(store.counts()).toEqual({ records: 0, feedback: 0 });
    } finally {
      retention.stop();
      store.close();
    }
  });
});
