import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeOf } from "@shadowmesh/common/testing";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ChildService, runMain, startChildService } from "./testing/child.js";
import { grpcClient } from "./testing/harness.js";
import { pair, wire } from "./testing/records.js";

/**
 * The built service as a process (runService on the common skeleton, through the common process harness):
 * --help, refusing bad settings and an unusable data directory, its ops port, the secret kept out of the logs, and
 * SIGTERM — with a live report stream open, and under load with nothing acknowledged lost.
 */

const dirs: string[] = [];
const children: ChildService[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
  await Promise.all(children.splice(0).map(({ service }) => service.kill()));
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "metrics-main-"));
  dirs.push(dir);
  return dir;
}

async function start(env: Record<string, string>): Promise<ChildService> {
  const service = await startChildService(env);
  children.push(service);
  return service;
}

function client<S extends Parameters<typeof grpcClient>[0]>(service: S, port: number) {
  const created = grpcClient(service, `127.0.0.1:${port}`);
  cleanups.push(() => created.close());
  return created;
}

const SECRET = "main-test-feedback-secret-0123456789abcdef";

describe("metrics-service process", () => {
  it("prints what it is and every setting with --help", async () => {
    const result = await runMain(["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^metrics-service: joins the primary's predictions with each candidate's/);
    expect(result.stdout).toContain("METRICS_SERVICE_JOIN_WINDOW_MS");
    expect(result.stdout).toContain("METRICS_SERVICE_VERDICT_MIN_PAIRS");
  });

  it("refuses a bad combination at start with one line and exit code 2", async () => {
    const result = await runMain([], { METRICS_SERVICE_WATCH_MIN_INTERVAL_MS: "9000" });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^metrics-service: invalid configuration: .*WATCH_MIN_INTERVAL_MS.*\(see --help\)/,
    );
  });

  it("says in one line when its data directory cannot be used, exit 1, before binding any port", async () => {
    // The gRPC port is taken: had the service bound ports before opening the store, it would complain about that.
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const taken = (holder.address() as { port: number }).port;
    const result = await runMain([], {
      METRICS_SERVICE_DATA_DIR: "/proc/version/shadow",
      METRICS_SERVICE_GRPC_PORT: String(taken),
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^metrics-service: cannot open the store in \/proc\/version\/shadow: /);
  });

  it("serves /readyz and the shadow gauges, keeps the feedback secret out of its logs, and on SIGTERM turns NOT_SERVING during the delay, ends a live report stream with UNAVAILABLE and exits 0", async () => {
    const service = await start({
      METRICS_SERVICE_DATA_DIR: dataDir(),
      METRICS_SERVICE_FEEDBACK_SECRET: SECRET,
      METRICS_SERVICE_SHUTDOWN_DELAY_MS: "3000",
    });
    const readyz = () => fetch(`http://127.0.0.1:${service.metricsPort}/readyz`).then((r) => r.status);
    expect(await readyz()).toBe(200);
    const health = client(Health, service.grpcPort);
    for (const name of ["", "shadowmesh.metrics.v1.MetricsService"]) {
      expect((await health.check({ service: name })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
    const gauges = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
    expect(gauges).toMatch(
      /^shadowmesh_verdict\{decision="INSUFFICIENT_DATA",service="metrics-service"\} 1$/m,
    );
    expect(gauges).toMatch(/^shadowmesh_shadow_pairs\{service="metrics-service"\} 0$/m);
    const starting = JSON.parse(
      service
        .output()
        .split("\n")
        .find((l) => l.includes('"msg":"starting"')) ?? "{}",
    );
    expect(starting.config?.FEEDBACK_SECRET).toBe("(set)");
    expect(starting.config?.DATA_DIR).toBeDefined();

    const metrics = client(MetricsService, service.grpcPort);
    const stream = metrics.watchShadowReport({})[Symbol.asyncIterator]();
    expect((await stream.next()).done).toBe(false);
    const ended = (async () => {
      while (!(await stream.next()).done) {}
    })();
    service.child.kill("SIGTERM");
    // During the delay the port still answers: health says NOT_SERVING and /readyz 503 (load balancers notice).
    await vi.waitFor(
      async () => {
        expect((await health.check({ service: "" })).status).toBe(
          HealthCheckResponse_ServingStatus.NOT_SERVING,
        );
        expect(await readyz()).toBe(503);
      },
      { timeout: 2500, interval: 20 },
    );
    // Then the stream is ended by the service (not left to the force close), so that the client reconnects.
    expect(await codeOf(ended)).toBe(Code.Unavailable);
    expect(await service.exited()).toEqual({ code: 0, signal: null });
    expect(service.output()).toContain('"msg":"stopped"');
    expect(service.output()).not.toContain(SECRET);
    expect(service.service.stderr).toEqual([]);
  });

  it("loses nothing it acknowledged when SIGTERM comes under load", async () => {
    const dir = dataDir();
    // Calls keep coming during the shutdown delay (answered: the service is only not ready), then are refused.
    const first = await start({ METRICS_SERVICE_DATA_DIR: dir, METRICS_SERVICE_SHUTDOWN_DELAY_MS: "1000" });
    const metrics = client(MetricsService, first.grpcPort);
    const t = Date.now() - 1000;
    const batchOf = (w: number, b: number) => {
      const records = [];
      for (let i = 0; i < 10; i++) {
        records.push(...pair(`w${w}-b${b}-${i}`, t, { label: "spam" }, { label: "ham" }).map(wire));
      }
      return records;
    };
    const acknowledged: [number, number][] = [];
    const failures: Code[] = [];
    let stopped = false;
    // Four writers, each at most 500 batches, each stopping at its first refusal (the service is going away).
    const writers = [0, 1, 2, 3].map(async (w) => {
      for (let b = 0; b < 500 && !stopped; b++) {
        try {
          await metrics.reportPredictions({ records: batchOf(w, b) }, { timeoutMs: 5000 });
          acknowledged.push([w, b]);
        } catch (error) {
          failures.push(ConnectError.from(error).code);
          return;
        }
      }
    });
    await vi.waitUntil(() => acknowledged.length >= 20, { timeout: 20_000, interval: 5 });
    first.child.kill("SIGTERM");
    const atSignal = acknowledged.length;
    await Promise.all(writers);
    stopped = true;
    expect(await first.exited()).toEqual({ code: 0, signal: null });
    expect(first.service.stderr).toEqual([]);
    // The signal came under load: calls were still acknowledged during the delay, and the writers were cut short.
    expect(acknowledged.length).toBeGreaterThan(atSignal);
    expect(acknowledged.length).toBeLessThan(4 * 500);
    // Calls the service did not take were refused as unavailable (retry elsewhere), not failed as internal errors.
    for (const code of failures) {
      expect([Code.Unavailable, Code.Canceled]).toContain(code);
    }

    const second = await start({ METRICS_SERVICE_DATA_DIR: dir });
    const after = client(MetricsService, second.grpcPort);
    const { report } = await after.getShadowReport({});
    expect(report?.totals?.pairCount).toBeGreaterThanOrEqual(BigInt(acknowledged.length * 10));
    // Every acknowledged batch is there: sent again, all of it is a duplicate.
    for (const [w, b] of acknowledged) {
      const again = await after.reportPredictions({ records: batchOf(w, b) });
      expect(again).toMatchObject({ acceptedCount: 0, duplicateCount: 20 });
    }
    expect(await second.service.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
