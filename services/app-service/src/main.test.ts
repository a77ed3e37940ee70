import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { runToExit, type ServiceProcess, startService } from "@shadowmesh/common/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  deadAddress,
  type FakeModelService,
  type FakeServer,
  fakeModelService,
  serveFake,
} from "./testing/fakes.js";
import { WAIT } from "./testing/metric-value.js";

/**
 * app-service as a real process (the built dist/main.js, as `npm start` runs it, started with the common process
 * harness: port 0, ports from the "listening" line): settings, readiness that follows
 * model-service's health, Prometheus metrics that promtool accepts, third-party clients (`buf curl` over the
 * Connect and gRPC-web protocols), and a graceful SIGTERM.
 */

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const MAIN = path.join(ROOT, "services/app-service/dist/main.js");
const BUF = path.join(ROOT, "node_modules/.bin/buf");
const SECRET = "main-test-feedback-secret-0123456789abcdef";

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describe("app-service settings", () => {
  it("prints every setting with its default and help on --help", async () => {
    const { stdout } = await run(process.execPath, [MAIN, "--help"]);
    for (const name of [
      "APP_SERVICE_PORT",
      "APP_SERVICE_METRICS_PORT",
      "APP_SERVICE_MODEL_SERVICE_ADDRESS",
      "APP_SERVICE_SHADOW_ADDRESS",
      "APP_SERVICE_SHADOWS",
      "APP_SERVICE_SHADOW_NAME",
      "APP_SERVICE_MIRROR_PERCENT",
      "APP_SERVICE_METRICS_SERVICE_ADDRESS",
      "APP_SERVICE_WEB_DIR",
      "APP_SERVICE_DEADLINE_MS",
      "APP_SERVICE_CORS_ORIGINS",
      "APP_SERVICE_MAX_BODY_BYTES",
      "APP_SERVICE_MAX_MIRRORS_IN_FLIGHT",
    ]) {
      expect(stdout).toContain(name);
    }
  });

  it("stops at start with one readable line on a bad setting", async () => {
    const { code, stderr } = await runToExit({ entry: MAIN, env: { APP_SERVICE_MIRROR_PERCENT: "150" } });
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("APP_SERVICE_MIRROR_PERCENT");
  });

  it("stops at start with one line naming the bad entry of APP_SERVICE_SHADOWS", async () => {
    const { code, stderr } = await runToExit({
      entry: MAIN,
      env: { APP_SERVICE_SHADOWS: "spam-v2=127.0.0.1:50052,spam-lite=127.0.0.1:50052" },
    });
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("APP_SERVICE_SHADOWS: the address 127.0.0.1:50052 is given twice");
  });

  it("stops at start with one line when the feedback secret is too short", async () => {
    const { code, stderr } = await runToExit({
      entry: MAIN,
      env: { APP_SERVICE_FEEDBACK_SECRET: "too-short" },
    });
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("APP_SERVICE_FEEDBACK_SECRET must be at least 32 characters");
    expect(stderr).not.toContain("too-short");
  });

  it("stops at start when the web directory has no built app", async () => {
    const { code, stderr } = await runToExit({
      entry: MAIN,
      env: { APP_SERVICE_WEB_DIR: path.join(ROOT, "does-not-exist") },
    });
    expect(code).toBe(2);
    expect(stderr).toContain("has no index.html");
  });
});

describe("app-service as a process", () => {
  let primary: FakeModelService;
  let primaryServer: FakeServer;
  let service: ServiceProcess;
  let port: number;
  let metricsPort: number;
  const logs = () => service.lines.join("\n");

  beforeAll(async () => {
    expect(existsSync(MAIN), `${MAIN} is missing: build first (npx tsc -b)`).toBe(true);
    primary = fakeModelService();
    primaryServer = await serveFake(primary);
    // Port 0 for both: the skeleton's "listening" line says which ports were bound.
    service = await startService({
      entry: MAIN,
      env: {
        APP_SERVICE_HOST: "127.0.0.1",
        APP_SERVICE_PORT: "0",
        APP_SERVICE_METRICS_PORT: "0",
        APP_SERVICE_MODEL_SERVICE_ADDRESS: primaryServer.address,
        // Nothing listens there, even when a developer runs `npm start` beside the tests.
        APP_SERVICE_METRICS_SERVICE_ADDRESS: await deadAddress(),
        APP_SERVICE_READY_CHECK_INTERVAL_MS: "100",
        APP_SERVICE_WEB_DIR: "",
        APP_SERVICE_FEEDBACK_SECRET: SECRET,
        APP_SERVICE_LOG_LEVEL: "debug",
      },
    });
    port = service.ports.http ?? 0;
    metricsPort = service.ports.metrics ?? 0;
    await vi.waitUntil(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200;
      } catch {
        return false;
      }
    }, WAIT);
  });

  afterAll(async () => {
    await service?.kill();
    await primaryServer.close();
  });

  const readyz = async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status;

  it("is ready only while model-service reports SERVING", async () => {
    expect(await readyz()).toBe(200);
    primary.health.set("NOT_SERVING");
    await vi.waitUntil(async () => (await readyz()) === 503, WAIT);
    primary.health.set("SERVING");
    await vi.waitUntil(async () => (await readyz()) === 200, WAIT);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
  });

  it("answers buf curl over the Connect protocol and over gRPC-web", async () => {
    for (const protocol of ["connect", "grpcweb"]) {
      const { stdout } = await run(
        BUF,
        [
          "curl",
          "--schema",
          path.join(ROOT, "proto"),
          "--protocol",
          protocol,
          "-H",
          `x-request-id: buf-curl-${protocol}`,
          "--data",
          '{"text": "Congratulations, you WIN a FREE cruise"}',
          `http://127.0.0.1:${port}/shadowmesh.predict.v1.PredictService/Predict`,
        ],
        { cwd: ROOT },
      );
      const body = JSON.parse(stdout) as {
        prediction: { label: string; requestId: string; clientRequestId: string };
      };
      expect(body.prediction.label).toBe("spam");
      // The join key is app-service's own (a UUIDv7); the caller's id comes back as clientRequestId.
      expect(body.prediction.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
      expect(body.prediction.clientRequestId).toBe(`buf-curl-${protocol}`);
    }
  });

  it("logs errors with the join key and the caller's request id", async () => {
    await fetch(`http://127.0.0.1:${port}/shadowmesh.metrics.v1.MetricsService/GetShadowReport`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "log-me-42" },
      body: "{}",
    });
    // metrics-service is not running at its address: the call fails UNAVAILABLE and the warning names the request.
    const line = await service.waitForLine((l) => l.includes('"clientRequestId":"log-me-42"'), 10_000);
    expect((JSON.parse(line) as { requestId: string }).requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  });

  it("exports request and mirror metrics that promtool accepts", async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const name of [
      "app_requests_total",
      "app_requests_in_progress",
      "app_request_latency_seconds",
      "app_request_duration_seconds_bucket",
      "app_mirror_sent_total",
      "app_mirror_dropped_total",
      "app_mirror_failed_total",
      "app_mirror_reports_dropped_total",
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/app_requests_total\{[^}]*method="Predict"[^}]*code="OK"[^}]*\} [1-9]/);
    const promtool = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    promtool.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    promtool.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    promtool.stdin?.end(text);
    expect(await exitOf(promtool)).toBe(0);
    expect(output.trim()).toBe("");
  });

  it("never logs the feedback secret", () => {
    expect(logs()).toContain('"FEEDBACK_SECRET":"(set)"');
    expect(logs()).not.toContain(SECRET);
  });

  it("reports the bound ports and what it mirrors in its start-up lines", () => {
    expect(port).toBeGreaterThan(0);
    expect(metricsPort).toBeGreaterThan(0);
    expect(logs()).toContain('"mirroring":"off"');
  });

  it("stops gracefully on SIGTERM with exit code 0", async () => {
    expect(await service.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
