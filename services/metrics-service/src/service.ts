import {
  bindGrpcServer,
  createLogger,
  createRegistry,
  createService,
  type Logger,
  listenOn,
  stopGrpcServer,
} from "@shadowmesh/common";
import type { Registry } from "prom-client";
import { type Config, PREFIX } from "./config.js";
import { createMetricsServer } from "./server.js";
import { ShadowStore } from "./store.js";

export interface MetricsServiceDeps {
  /** The service's logger; one at config.LOG_LEVEL by default. */
  logger?: Logger;
  registry?: Registry;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
}

/** The store in DATA_DIR cannot be opened; the message is one readable line. */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
  /** An unusable data directory is a fault of the machine, not of the settings: exit 1 (as a port in use). */
  readonly exitCode = 1;
}

/** Opens the SQLite store of `config.DATA_DIR`, or throws a StoreOpenError that says why in one line. */
export function openStore(config: Config): ShadowStore {
  try {
    return new ShadowStore({
      dataDir: config.DATA_DIR,
      synchronous: config.SQLITE_SYNCHRONOUS === "NORMAL" ? "NORMAL" : "FULL",
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new StoreOpenError(`cannot open the store in ${config.DATA_DIR}: ${reason}`);
  }
}

/**
 * The whole metrics-service, wired from its configuration on the common skeleton (createService): the store (opened
 * here, so an unusable DATA_DIR fails before any port is bound), the gRPC server (MetricsService routes, health,
 * reflection), the shadow gauges and the retention sweep. main.ts is runService, so tests run the same listen →
 * ready → stop in-process.
 *
 * Shutdown: health NOT_SERVING → SHUTDOWN_DELAY_MS → drain (end the live report streams first — they never end by
 * themselves; they end with UNAVAILABLE so clients reconnect elsewhere — then finish the unary calls within the
 * skeleton's drain bound) → close (retention sweep, report worker, store) → ops server.
 */
export function createMetricsService(config: Config, deps: MetricsServiceDeps = {}) {
  const logger = deps.logger ?? createLogger("metrics-service", config.LOG_LEVEL);
  const registry = deps.registry ?? createRegistry("metrics-service");
  const store = openStore(config);
  /** Aborted when the drain starts: ends live report streams and tells handlers through `context.signal`. */
  const shutdown = new AbortController();
  const built = createMetricsServer({
    config,
    logger,
    registry,
    store,
    shutdownSignal: shutdown.signal,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const { server, health, retention, engine } = built;

  const service = createService(
    {
      listen: async () => ({
        grpc: await listenOn(
          { setting: `${PREFIX}GRPC_PORT`, host: config.HOST, port: config.GRPC_PORT },
          () => bindGrpcServer(server, config.HOST, config.GRPC_PORT),
        ),
      }),
      start: async () => {
        health.set("SERVING");
        logger.info({ store: store.file, ...store.counts() }, "serving");
      },
      ready: () => health.serving,
      notServing: () => health.set("NOT_SERVING"),
      drain: async (timeoutMs) => {
        shutdown.abort();
        await stopGrpcServer(server, timeoutMs);
      },
      close: async () => {
        retention.stop();
        try {
          await engine.close();
        } finally {
          store.close();
        }
      },
    },
    {
      name: "metrics-service",
      logger,
      registry,
      host: config.HOST,
      metricsPort: config.METRICS_PORT,
      metricsPortSetting: `${PREFIX}METRICS_PORT`,
      shutdownDelayMs: config.SHUTDOWN_DELAY_MS,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    },
  );

  return Object.assign(service, {
    ...built,
    config,
    store,
    registry,
    /** Aborting it ends the live report streams (UNAVAILABLE), as the drain does. */
    shutdown,
  });
}

export type MetricsServiceInstance = ReturnType<typeof createMetricsService>;
