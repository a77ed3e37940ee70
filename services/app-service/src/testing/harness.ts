import { createLogger } from "@shadowmesh/common";
import { Registry } from "prom-client";
import type { App } from "../app.js";
import { type AppService, createAppService } from "../app-service.js";
import { readConfig } from "../config.js";
import type { FakeNetwork } from "./fakes.js";

export interface RunningApp {
  readonly app: App;
  readonly service: AppService;
  readonly registry: Registry;
  /** http://127.0.0.1:port (the API and the web app) */
  readonly baseUrl: string;
  /** http://127.0.0.1:port of /metrics, /healthz and /readyz */
  readonly opsUrl: string;
  /** The production stop() (the skeleton's order: not ready → delay → drain → flush → close). */
  close(): Promise<void>;
}

/**
 * Starts app-service in-process as production does — `createAppService(config, logger)`, then the Service's
 * `listen()` (port 0 for the API and the ops server, on 127.0.0.1) and `ready()` (the first readiness check) —
 * with `env` (without the APP_SERVICE_ prefix). Upstream addresses registered in `network` are served in memory;
 * any other address is dialled for real. Logs are silent unless LOG_LEVEL is given.
 */
export async function startApp(env: Record<string, string>, network?: FakeNetwork): Promise<RunningApp> {
  const prefixed: NodeJS.ProcessEnv = {
    APP_SERVICE_HOST: "127.0.0.1",
    APP_SERVICE_PORT: "0",
    APP_SERVICE_METRICS_PORT: "0",
    // A test's stop drains for at most a few seconds (production: 10 s).
    APP_SERVICE_SHUTDOWN_TIMEOUT_MS: "4000",
  };
  for (const [key, value] of Object.entries(env)) {
    prefixed[`APP_SERVICE_${key}`] = value;
  }
  const config = readConfig(prefixed);
  const service = createAppService(config, createLogger("app-service", env.LOG_LEVEL ?? "silent"), {
    registry: new Registry(),
    ...(network ? { transport: network.transport } : {}),
  });
  const ports = await service.listen();
  await service.ready();
  return {
    app: service.app,
    service,
    registry: service.registry,
    baseUrl: `http://127.0.0.1:${ports.http}`,
    opsUrl: `http://127.0.0.1:${ports.metrics}`,
    close: () => service.stop(),
  };
}
