import { loadConfig, ms, port, shutdownSpec } from "../config.js";
import { runService } from "../service.js";
import { createTinyService } from "./tiny-service.js";

/** main.ts of the tiny service (process harness tests): the whole of it is runService. */
const spec = {
  GRPC_PORT: port({ default: 0, desc: "gRPC port." }),
  METRICS_PORT: port({ default: 0, desc: "Ops port." }),
  START_MS: ms({ default: 0, desc: "How long the start takes." }),
  ...shutdownSpec(),
};
const read = () => loadConfig("TINY_", spec);

await runService({
  name: "tiny",
  about: "a service in twenty lines.",
  help: () => "TINY_* settings",
  readConfig: read,
  logLevel: () => "info",
  shutdownTimeoutMs: (config) => config.SHUTDOWN_TIMEOUT_MS,
  create: (config, logger) =>
    createTinyService(
      {
        host: "127.0.0.1",
        grpcPort: config.GRPC_PORT,
        metricsPort: config.METRICS_PORT,
        shutdownDelayMs: config.SHUTDOWN_DELAY_MS,
        shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
        startMs: config.START_MS,
      },
      logger,
    ),
});
