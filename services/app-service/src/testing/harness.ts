import type { AddressInfo } from "node:net";
import { createLogger } from "@shadowmesh/common";
import { Registry } from "prom-client";
import { type App, createApp } from "../app.js";
import { readConfig } from "../config.js";
import type { FakeNetwork } from "./fakes.js";

export interface RunningApp {
  readonly app: App;
  readonly registry: Registry;
  /** http://127.0.0.1:port */
  readonly baseUrl: string;
  close(): Promise<void>;
}

/**
 * Starts app-service in-process on 127.0.0.1 port 0 with `env` (without the APP_SERVICE_ prefix), the way main.ts
 * wires it, and waits for the first readiness check. Upstream addresses registered in `network` are served in memory;
 * any other address is dialled for real. Logs are silent unless LOG_LEVEL is given.
 */
export async function startApp(env: Record<string, string>, network?: FakeNetwork): Promise<RunningApp> {
  // The ports are not used here: the server listens on port 0 below.
  const prefixed: NodeJS.ProcessEnv = { APP_SERVICE_PORT: "1", APP_SERVICE_METRICS_PORT: "2" };
  for (const [key, value] of Object.entries(env)) {
    prefixed[`APP_SERVICE_${key}`] = value;
  }
  const config = readConfig(prefixed);
  const registry = new Registry();
  const app = createApp(
    config,
    createLogger("app-service", env.LOG_LEVEL ?? "silent"),
    registry,
    network ? { transport: network.transport } : {},
  );
  await new Promise<void>((resolve) => app.server.listen(0, "127.0.0.1", () => resolve()));
  await app.readiness.start();
  const { port } = app.server.address() as AddressInfo;
  return {
    app,
    registry,
    baseUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      app.endStreams();
      app.abortCalls();
      app.server.closeAllConnections();
      await new Promise<void>((resolve) => app.server.close(() => resolve()));
      await app.flushReports(1000);
      app.closeClients();
    },
  };
}
