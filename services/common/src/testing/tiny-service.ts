import { bindGrpcServer, createGrpcServer, stopGrpcServer } from "../grpc-server.js";
import { HealthReporter } from "../health.js";
import type { Logger } from "../logger.js";
import { createRegistry } from "../ops-server.js";
import { createService, type Service } from "../service.js";
import { sleep } from "../shutdown.js";

/**
 * A fourth service in about 20 lines (issue #13): a grpc-js server with the health service, its ops server,
 * graceful shutdown and SIGHUP, all from the skeleton. Used by the skeleton's tests and the process harness test.
 */
export interface TinyConfig {
  host: string;
  grpcPort: number;
  metricsPort: number;
  shutdownDelayMs: number;
  shutdownTimeoutMs: number;
  /** How long start takes (a model being loaded). */
  startMs?: number;
}

export function createTinyService(config: TinyConfig, logger: Logger): Service & { reloads: string[] } {
  const server = createGrpcServer();
  const health = new HealthReporter(["tiny.v1.Tiny"]);
  health.addToServer(server);
  const reloads: string[] = [];
  const service = createService(
    {
      listen: async () => ({ grpc: await bindGrpcServer(server, config.host, config.grpcPort) }),
      start: async () => {
        await sleep(config.startMs ?? 0);
        health.set("SERVING");
      },
      ready: () => health.serving,
      notServing: () => health.set("NOT_SERVING"),
      drain: (timeoutMs) => stopGrpcServer(server, timeoutMs),
      reload: async (reason) => {
        reloads.push(reason);
        logger.info({ reason }, "reloaded");
      },
    },
    {
      name: "tiny",
      logger,
      registry: createRegistry("tiny"),
      ...config,
      metricsPortSetting: "TINY_METRICS_PORT",
    },
  );
  return Object.assign(service, { reloads });
}
