import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcJsTransport } from "@shadowmesh/common";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { afterAll, describe, expect, it, vi } from "vitest";
import {
  commandOf,
  descendants,
  freePorts,
  type Launcher,
  parentOf,
  servicePids,
  startLauncher,
  waitGone,
} from "./faults/launcher.js";
import { DEFAULT_PORTS, type MeshPorts, ROOT } from "./lib/mesh.js";
import { portFree } from "./lib/ports.js";

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
    Object.assign(ports, await freePorts());
    for (const key of Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[]) {
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
    const running = launcher;
    await vi.waitUntil(() => output.includes("Press Ctrl-C to stop.") || running.exitCode !== null, {
      timeout: 120_000,
      interval: 100,
    });
    expect(output).toContain("Shadowmesh is running");
    expect(output).toContain(`http://127.0.0.1:${ports.app}`);
    expect(output).toContain(`grpc://127.0.0.1:${ports.primary}`);
    expect(output).toContain(`http://127.0.0.1:${ports.metricsMetrics}/metrics`);

    for (const port of [ports.primary, ports.shadow, ports.lite, ports.metrics]) {
      const transport = createGrpcJsTransport({ address: `127.0.0.1:${port}` });
      try {
        const response = await createClient(Health, transport).check({ service: "" }, { timeoutMs: 5000 });
        expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      } finally {
        transport.close();
      }
    }
    for (const port of [
      ports.appMetrics,
      ports.primaryMetrics,
      ports.shadowMetrics,
      ports.liteMetrics,
      ports.metricsMetrics,
    ]) {
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

/** `npm start` against a hostile user: kill -9, a closing terminal, a second start on the same ports. */
describe("npm start leaves nothing behind", () => {
  const launchers: Launcher[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const launcher of launchers) {
      const services = servicePids(descendants(launcher.child.pid as number));
      launcher.child.kill("SIGKILL");
      for (const pid of services) {
        process.kill(pid, "SIGKILL");
      }
    }
    for (const dir of dirs) {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const launch = async (detached = false) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "start-hostile-"));
    dirs.push(dataDir);
    const launcher = startLauncher({ ports: await freePorts(), dataDir, detached });
    launchers.push(launcher);
    expect(await launcher.running(), launcher.output()).toBe(true);
    const services = servicePids(descendants(launcher.child.pid as number));
    // app-service, metrics-service, the primary and the two default candidates (spam-v2, spam-lite).
    expect(services).toHaveLength(5);
    return { launcher, services };
  };

  it("refuses a second start on taken ports, naming each port and its holder; then kill -9 of the launcher stops every service", async () => {
    const { launcher, services } = await launch();
    const second = startLauncher({ ports: launcher.ports, dataDir: launcher.dataDir });
    launchers.push(second);
    expect(await second.running(30_000)).toBe(false);
    expect((await second.exited).code).toBe(1);
    const appPid = services.find((pid) => commandOf(pid).includes("app-service"));
    expect(second.output()).toContain(
      `port ${launcher.ports.app} (app-service HTTP, SHADOWMESH_APP_PORT) on 127.0.0.1 is in use by pid ${appPid}`,
    );
    expect(second.output()).toContain(
      `a Shadowmesh app-service started earlier (by another npm start, running or left behind); stop it with: kill ${appPid}`,
    );
    expect(second.output()).toContain(
      `port ${launcher.ports.metrics} (metrics-service gRPC, SHADOWMESH_METRICS_PORT)`,
    );
    expect(second.output()).not.toContain("Shadowmesh is running");
    // The first mesh did not notice.
    expect((await fetch(`http://127.0.0.1:${launcher.ports.appMetrics}/readyz`)).status).toBe(200);

    // kill -9 of the process that started the services: it cannot clean up, so each service must notice alone.
    const launcherPid = parentOf(services[0] as number) as number;
    expect(commandOf(launcherPid)).toContain("scripts/start.ts");
    process.kill(launcherPid, "SIGKILL");
    expect(await waitGone(services, 15_000)).toEqual([]);
    for (const port of [launcher.ports.app, launcher.ports.primary, launcher.ports.metrics]) {
      expect(await portFree(port, "127.0.0.1")).toBe(true);
    }
  }, 180_000);

  it("stops every service when the tsx wrapper is killed with -9", async () => {
    const { launcher, services } = await launch();
    launcher.child.kill("SIGKILL");
    expect(await waitGone(services, 15_000)).toEqual([]);
  }, 180_000);

  it("stops every service in order when the terminal closes (SIGHUP to the process group)", async () => {
    const { launcher, services } = await launch(true);
    const launcherPid = parentOf(services[0] as number) as number;
    process.kill(-(launcher.child.pid as number), "SIGHUP");
    // The wrapper (tsx) dies of the SIGHUP at once; the launcher stops the services in order, then exits.
    expect(await waitGone([...services, launcherPid], 15_000)).toEqual([]);
    expect(launcher.output()).toContain("SIGHUP: stopping the mesh");
    expect(launcher.output()).toMatch(/stopped in \d+\.\d s/);
  }, 180_000);
});
