import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createGrpcClient } from "@shadowmesh/common";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import { type ChildService, MAIN_JS, runToEnd, startChildService } from "./testing/child.js";

/** The built service as a process: --help, refusing bad settings, its ops port, and a clean SIGTERM. */

const dirs: string[] = [];
const children: ChildService[] = [];
afterEach(() => {
  for (const { child } of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
    }
  }
  for (const dir of dirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
});

const run = (args: string[], env: Record<string, string>) =>
  runToEnd(process.execPath, [MAIN_JS, ...args], env);

describe("metrics-service process", () => {
  it("prints what it is and every setting with --help", async () => {
    const result = await run(["--help"], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^metrics-service: joins primary and shadow predictions/);
    expect(result.stdout).toContain("METRICS_SERVICE_JOIN_WINDOW_MS");
    expect(result.stdout).toContain("METRICS_SERVICE_VERDICT_MIN_PAIRS");
  });

  it("refuses a bad combination at start with one line and exit code 2", async () => {
    const result = await run([], { METRICS_SERVICE_WATCH_MIN_INTERVAL_MS: "9000" });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^metrics-service: invalid configuration: .*WATCH_MIN_INTERVAL_MS.*\(see --help\)/,
    );
  });

  it("says in one line when its data directory cannot be used", async () => {
    const result = await run([], {
      METRICS_SERVICE_DATA_DIR: "/proc/version/shadow",
      METRICS_SERVICE_GRPC_PORT: "0",
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^metrics-service: cannot open the store in \/proc\/version\/shadow: /);
  });

  it("serves /readyz and the shadow gauges on its ops port, and stops cleanly on SIGTERM", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "metrics-main-"));
    dirs.push(dataDir);
    const service = await startChildService({ METRICS_SERVICE_DATA_DIR: dataDir });
    children.push(service);
    const base = `http://127.0.0.1:${service.metricsPort}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const health = createGrpcClient(Health, `127.0.0.1:${service.grpcPort}`);
    try {
      for (const name of ["", "shadowmesh.metrics.v1.MetricsService"]) {
        expect((await health.check({ service: name })).status).toBe(
          HealthCheckResponse_ServingStatus.SERVING,
        );
      }
    } finally {
      health.close();
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(
      /^shadowmesh_verdict\{decision="INSUFFICIENT_DATA",service="metrics-service"\} 1$/m,
    );
    expect(metrics).toMatch(/^shadowmesh_shadow_pairs\{service="metrics-service"\} 0$/m);
    service.child.kill("SIGTERM");
    expect(await service.exited()).toEqual({ code: 0, signal: null });
    expect(service.output()).toContain('"msg":"stopped"');
  });
});
