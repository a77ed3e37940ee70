import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcJsTransport, feedbackToken } from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { type ChildService, startChildService } from "./testing/child.js";
import { pair, wire } from "./testing/records.js";

/**
 * Acknowledged writes survive `kill -9`: a real child process (the built service) is killed with SIGKILL right
 * after its last acknowledgement, restarted on the same data directory, and must report every record and every
 * piece of feedback it acknowledged.
 */

const SECRET = "durability-test-feedback-secret-0123456789";
const dirs: string[] = [];
const children: ChildService[] = [];

afterEach(async () => {
  for (const { child } of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
  }
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function start(dataDir: string, synchronous: string) {
  const service = await startChildService({
    METRICS_SERVICE_DATA_DIR: dataDir,
    METRICS_SERVICE_SQLITE_SYNCHRONOUS: synchronous,
    METRICS_SERVICE_FEEDBACK_SECRET: SECRET,
  });
  children.push(service);
  return service;
}

describe("durability", () => {
  it.each(["FULL", "NORMAL"])(
    "keeps every acknowledged record and feedback after kill -9 (synchronous = %s)",
    async (synchronous) => {
      const dataDir = mkdtempSync(path.join(tmpdir(), "metrics-durability-"));
      dirs.push(dataDir);
      const first = await start(dataDir, synchronous);
      const channel = createGrpcJsTransport({ address: `127.0.0.1:${first.grpcPort}` });
      const client = createClient(MetricsService, channel);
      const t = Date.now() - 1000;
      const batches = 40;
      const perBatch = 25;
      // Concurrent writers, as several model-services and browsers would be; each write is awaited (acknowledged).
      const writes: Promise<unknown>[] = [];
      for (let b = 0; b < batches; b++) {
        const records = [];
        for (let i = 0; i < perBatch; i++) {
          records.push(
            ...pair(`b${b}-${i}`, t, { label: "spam" }, { label: i % 5 ? "spam" : "ham" }).map(wire),
          );
        }
        writes.push(client.reportPredictions({ records }));
        writes.push(
          client.submitFeedback({
            requestId: `b${b}-0`,
            label: "ham",
            feedbackToken: feedbackToken(SECRET, `b${b}-0`, 0),
          }),
        );
      }
      const acks = await Promise.all(writes);
      expect(acks).toHaveLength(2 * batches);
      first.child.kill("SIGKILL");
      channel.close();
      expect(await first.exited()).toEqual({ code: null, signal: "SIGKILL" });

      const second = await start(dataDir, synchronous);
      const afterChannel = createGrpcJsTransport({ address: `127.0.0.1:${second.grpcPort}` });
      const after = createClient(MetricsService, afterChannel);
      try {
        const { report } = await after.getShadowReport({});
        const pairs = BigInt(batches * perBatch);
        expect(report?.totals?.pairCount).toBe(pairs);
        expect(report?.totals?.primaryRecordCount).toBe(pairs);
        expect(report?.totals?.shadowRecordCount).toBe(pairs);
        expect(report?.agreement?.agreeingCount).toBe(pairs - BigInt(batches * (perBatch / 5)));
        expect(report?.primary?.feedbackCount).toBe(BigInt(batches));
        expect(report?.shadow?.correctCount).toBe(BigInt(batches));
        // A retry after the restart is still recognised as a duplicate.
        const retry = await after.reportPredictions({
          records: pair("b0-1", t, { label: "spam" }, { label: "spam" }).map(wire),
        });
        expect(retry).toMatchObject({ acceptedCount: 0, duplicateCount: 2 });
      } finally {
        afterChannel.close();
        second.child.kill("SIGTERM");
        expect((await second.exited()).code).toBe(0);
      }
    },
  );
});
