import type { AddressInfo } from "node:net";
import {
  createRegistry,
  createService,
  type Logger,
  listenHttp,
  listenOn,
  type Service,
} from "@shadowmesh/common";
import type { Registry } from "prom-client";
import { type App, type AppDeps, createApp } from "./app.js";
import type { Config } from "./config.js";
import { createDrainer } from "./drain.js";

/** How long the shutdown may spend sending the queued records of failed mirrored calls. */
export const FLUSH_TIMEOUT_MS = 1000;

/** app-service as a Service, plus what tests look into (the wiring and the metrics registry). */
export type AppService = Service & {
  readonly app: App;
  readonly registry: Registry;
};

/**
 * app-service on the shared skeleton (`createService`): listen = the public HTTP port (`{ http }`; the skeleton adds
 * the ops server's `metrics`), start = the first readiness check of the primary, then one every interval; stop =
 * (not ready) → SHUTDOWN_DELAY_MS → drain (live report streams end, in-flight unary calls finish, busy keep-alive
 * connections close after their response, what outlasts the bound is cancelled) → flush the mirror reports (≤ 1 s) →
 * close the upstream connections and the readiness timer.
 */
export function createAppService(
  config: Config,
  logger: Logger,
  deps: AppDeps & { registry?: Registry } = {},
): AppService {
  const registry = deps.registry ?? createRegistry("app-service");
  const app = createApp(config, logger, registry, deps);
  const drainer = createDrainer(app.server);
  const service = createService(
    {
      listen: async () => {
        const address: AddressInfo = await listenOn(
          { setting: "APP_SERVICE_PORT", host: config.HOST, port: config.PORT },
          () => listenHttp(app.server, config.PORT, config.HOST),
        );
        return { http: address.port };
      },
      start: async () => {
        await app.readiness.start();
      },
      ready: () => app.readiness.ready,
      drain: async (timeoutMs) => {
        app.endStreams();
        await drainer.drain(timeoutMs, () => app.abortCalls());
      },
      flush: (timeoutMs) => app.flushReports(timeoutMs),
      close: () => app.closeClients(),
    },
    {
      name: "app-service",
      logger,
      registry,
      host: config.HOST,
      metricsPort: config.METRICS_PORT,
      metricsPortSetting: "APP_SERVICE_METRICS_PORT",
      shutdownDelayMs: config.SHUTDOWN_DELAY_MS,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
      flushTimeoutMs: FLUSH_TIMEOUT_MS,
    },
  );
  return Object.assign(service, { app, registry });
}
