import { createHash, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { reportSampled, reportSampleValue } from "./report-sampling.js";
import { PredictionReporter, type ReportEntry, type ReportSink } from "./reporter.js";

/** A UUIDv7 as app-service makes join keys: 48 bits of milliseconds first, so consecutive ids share a prefix. */
function uuidv7(ms: number): string {
  const hex = ms.toString(16).padStart(12, "0") + randomUUID().replaceAll("-", "").slice(12);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const entry = (requestId: string, batchIndex = 0): ReportEntry => ({
  requestId,
  batchIndex,
  modelName: "m",
  modelVersion: "1",
  label: "ham",
  labels: ["ham"],
  probabilities: [1],
  latencyNs: 1000,
  grpcStatusCode: 0,
  timeMs: 1,
  text: "x",
});

/** A sink that keeps what it was sent. */
function sink(): ReportSink & { ids: Set<string> } {
  const ids = new Set<string>();
  return {
    ids,
    async reportPredictions(request) {
      for (const record of request.records ?? []) {
        ids.add(`${record.requestId}/${record.batchIndex}`);
      }
    },
  };
}

describe("consistent report sampling", () => {
  it("is the first 4 bytes of SHA-256 of the request id, so any side can compute it", () => {
    const id = "0190f1e2-7c3a-7000-8000-000000000001";
    const expected = createHash("sha256").update(id).digest().readUInt32BE(0) / 2 ** 32;
    expect(reportSampleValue(id)).toBe(expected);
    expect(reportSampled(id, 1)).toBe(true);
    expect(reportSampled(id, 0)).toBe(false);
    expect(reportSampled(id, expected + 1e-9)).toBe(true);
    expect(reportSampled(id, expected)).toBe(false);
  });

  it("keeps about the rate's share of time-ordered UUIDv7 ids, spread over time", () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => uuidv7(1_800_000_000_000 + Math.floor(i / 100)));
    const kept = ids.filter((id) => reportSampled(id, 0.1)).length;
    // Binomial(20 000, 0.1): sd ≈ 42; 6 sd either way.
    expect(kept).toBeGreaterThan(2000 - 255);
    expect(kept).toBeLessThan(2000 + 255);
  });

  it("keeps the same requests in the primary's, the shadow's and the mirroring caller's reporter: pairs stay whole", async () => {
    const options = {
      instance: "t",
      includeRawText: false,
      queueSize: 100_000,
      batchSize: 500,
      intervalMs: 5,
      timeoutMs: 1000,
    };
    const logger = createLogger("sampling-test", "silent");
    const sinks = [sink(), sink(), sink()];
    const reporters = [
      new PredictionReporter(sinks[0], { ...options, role: "PRIMARY", sampleRate: 0.25 }, logger),
      new PredictionReporter(sinks[1], { ...options, role: "SHADOW", sampleRate: 0.25 }, logger),
      new PredictionReporter(
        sinks[2],
        { ...options, role: "SHADOW", source: "MIRROR", sampleRate: 0.25 },
        logger,
      ),
    ];
    const ids = Array.from({ length: 4000 }, (_, i) => uuidv7(1_800_000_000_000 + i));
    for (const reporter of reporters) {
      for (const id of ids) {
        reporter.report(entry(id, 0));
        reporter.report(entry(id, 1));
      }
      await reporter.close(5000);
    }
    const [primary, shadow, mirror] = sinks.map((s) => [...s.ids].sort());
    expect(primary?.length).toBeGreaterThan(1600);
    expect(primary?.length).toBeLessThan(2400);
    expect(shadow).toEqual(primary);
    expect(mirror).toEqual(primary);
    // Every batch index of a kept request is kept.
    expect(primary?.filter((k) => k.endsWith("/0")).length).toBe(
      primary?.filter((k) => k.endsWith("/1")).length,
    );
  });
});
