import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createGrpcClient } from "@shadowmesh/common";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_PORTS, freePort, type MeshPorts, ROOT } from "./lib/mesh.js";

/** `npm start` as a user runs it (minus install and build, which `npm test` has done): the real launcher. */
describe("npm start", () => {
  let launcher: ChildProcess | undefined;
  let output = "";
  const ports = {} as MeshPorts;

  afterAll(() => {
    launcher?.kill("SIGKILL");
  });

  it("starts every service, prints the URL table, answers health checks, and stops on Ctrl-C within 10 s", async () => {
    const env: Record<string, string> = { ...process.env } as Record<string, string>;
    for (const key of Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[]) {
      ports[key] = await freePort();
      env[`SHADOWMESH_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT`] = String(ports[key]);
    }
    env.SHADOWMESH_DATA_DIR = path.join(ROOT, ".test-output", "start-test");
    launcher = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/start.ts"], { cwd: ROOT, env });
    launcher.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    launcher.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => launcher?.once("exit", (code) => resolve(code)));

    // Bounded wait for the table (the launcher gives up by itself after 30 s per service).
    const started = Date.now();
    while (
      !output.includes("Press Ctrl-C to stop.") &&
      launcher.exitCode === null &&
      Date.now() - started < 120_000
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(output).toContain("Shadowmesh is running");
    expect(output).toContain(`http://127.0.0.1:${ports.app}`);
    expect(output).toContain(`grpc://127.0.0.1:${ports.primary}`);
    expect(output).toContain(`http://127.0.0.1:${ports.metricsMetrics}/metrics`);

    for (const port of [ports.primary, ports.shadow, ports.metrics]) {
      const health = createGrpcClient(Health, `127.0.0.1:${port}`);
      const response = await health.check({ service: "" }, { timeoutMs: 5000 });
      expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      health.close();
    }
    for (const port of [ports.appMetrics, ports.primaryMetrics, ports.shadowMetrics, ports.metricsMetrics]) {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(response.status).toBe(200);
    }

    const stopAt = Date.now();
    launcher.kill("SIGINT");
    const code = await exited;
    const seconds = (Date.now() - stopAt) / 1000;
    expect(code).toBe(0);
    expect(seconds).toBeLessThan(10);
    expect(output).toMatch(/stopped in \d+\.\d s/);
    // Every service is gone: their ports refuse connections.
    for (const port of [ports.app, ports.appMetrics, ports.primaryMetrics, ports.metricsMetrics]) {
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    }
  }, 180_000);
});
