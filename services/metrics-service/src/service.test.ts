import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { createLogger } from "@shadowmesh/common";
import { codeOf } from "@shadowmesh/common/testing";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readConfig } from "./config.js";
import { metricsRoutes } from "./server.js";
import { createMetricsService, StoreOpenError } from "./service.js";
import { grpcClient, startTestServer, type TestServer } from "./testing/harness.js";
import { pair, wire } from "./testing/records.js";

/**
 * createMetricsService on the common skeleton, in-process: the production stop (what the harness's `stop()` runs),
 * the store opened in create, and the routes function served by something other than grpc-js.
 */

const servers: TestServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function start(env: Record<string, string> = {}) {
  const server = await startTestServer(env);
  servers.push(server);
  return server;
}

const records = (prefix: string, n: number) => {
  const t = Date.now() - 1000;
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(...pair(`${prefix}-${i}`, t, { label: "spam" }, { label: i % 2 ? "spam" : "ham" }).map(wire));
  }
  return out;
};

describe("createMetricsService", () => {
  it("stops in the production order: not ready during the delay, live streams ended with UNAVAILABLE, ports and store closed", async () => {
    const server = await start({ METRICS_SERVICE_SHUTDOWN_DELAY_MS: "1500" });
    const readyz = () => fetch(`http://127.0.0.1:${server.ports.metrics}/readyz`).then((r) => r.status);
    expect(await readyz()).toBe(200);
    const stream = server.client.watchShadowReport({})[Symbol.asyncIterator]();
    expect((await stream.next()).done).toBe(false);
    const ended = codeOf(
      (async () => {
        while (!(await stream.next()).done) {}
      })(),
    );
    const stopping = server.metrics.stop();
    // During the delay calls are still answered, while /readyz says 503 and health NOT_SERVING.
    const late = server.client.reportPredictions({ records: records("late", 2) });
    await vi.waitFor(async () => expect(await readyz()).toBe(503), { timeout: 1000, interval: 10 });
    expect(server.health.serving).toBe(false);
    expect(await late).toMatchObject({ acceptedCount: 4 });
    expect(await ended).toBe(Code.Unavailable);
    await stopping;
    // stop() is idempotent: the same promise.
    expect(server.metrics.stop()).toBe(stopping);
    expect(() => server.store.counts()).toThrow();
    expect(await codeOf(server.client.getShadowReport({}, { timeoutMs: 2000 }))).toBe(Code.Unavailable);
    await expect(fetch(`http://127.0.0.1:${server.ports.metrics}/readyz`)).rejects.toThrow();
  });

  it("hands over its data directory: a new service on the same directory sees every acknowledged record", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "metrics-service-handover-"));
    dirs.push(dataDir);
    const env = {
      METRICS_SERVICE_DATA_DIR: dataDir,
      METRICS_SERVICE_GRPC_PORT: "0",
      METRICS_SERVICE_METRICS_PORT: "0",
      METRICS_SERVICE_HOST: "127.0.0.1",
      METRICS_SERVICE_SHUTDOWN_TIMEOUT_MS: "3000",
    };
    const logger = createLogger("metrics-service", "silent");
    const first = createMetricsService(readConfig(env), { logger });
    const { grpc } = await first.listen();
    await first.ready();
    const client = grpcClient(MetricsService, `127.0.0.1:${grpc}`);
    try {
      expect(await client.reportPredictions({ records: records("a", 5) })).toMatchObject({
        acceptedCount: 10,
      });
    } finally {
      client.close();
      await first.stop();
    }
    const second = createMetricsService(readConfig(env), { logger });
    try {
      expect(second.store.counts().records).toBe(10);
      // Asked in memory through its routes: the second service never needs to listen for this.
      const memory = createClient(MetricsService, createRouterTransport(metricsRoutes(second.service)));
      const { report } = await memory.getShadowReport({});
      expect(report?.totals?.pairCount).toBe(5n);
    } finally {
      await second.stop();
    }
  });

  it("throws a one-line StoreOpenError for an unusable data directory, before anything listens", () => {
    const config = readConfig({ METRICS_SERVICE_DATA_DIR: "/proc/version/shadow" });
    let thrown: unknown;
    try {
      createMetricsService(config, { logger: createLogger("metrics-service", "silent") });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StoreOpenError);
    expect((thrown as Error).message).toMatch(/^cannot open the store in \/proc\/version\/shadow: [^\n]+$/);
  });

  it("serves the same routes function in memory (createRouterTransport) as on grpc-js", async () => {
    const server = await start();
    await server.client.reportPredictions({ records: records("r", 4) });
    const memory = createClient(MetricsService, createRouterTransport(metricsRoutes(server.service)));
    const [overGrpc, inMemory] = await Promise.all([
      server.client.getShadowReport({}),
      memory.getShadowReport({}),
    ]);
    expect(inMemory.report?.totals).toEqual(overGrpc.report?.totals);
    expect(inMemory.report?.totals?.pairCount).toBe(4n);
    // Garbage in is refused the same way on both.
    const bad = { records: [{ requestId: "", role: 7 }] } as never;
    expect(await codeOf(memory.reportPredictions(bad))).toBe(
      await codeOf(server.client.reportPredictions(bad)),
    );
  });
});
