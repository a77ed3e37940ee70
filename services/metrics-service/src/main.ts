import {
  bindGrpcServer,
  createLogger,
  createOpsServer,
  createRegistry,
  installShutdown,
  readConfigOrExit,
  sleep,
  stopGrpcServer,
} from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { createMetricsServer } from "./server.js";

const config = readConfigOrExit("metrics-service", "joins primary and shadow predictions by request id and reports on the shadow model.", help, readConfig);

const logger = createLogger("metrics-service", config.LOG_LEVEL);
const registry = createRegistry("metrics-service");
const shutdown = new AbortController();
const { server, health } = createMetricsServer({
  config,
  logger,
  registry,
  metrics: {},
  shutdownSignal: shutdown.signal,
});
const ops = createOpsServer({ registry, ready: () => health.serving });

const grpcPort = await bindGrpcServer(server, config.HOST, config.GRPC_PORT);
const opsAddress = await ops.listen(config.METRICS_PORT, config.HOST);
health.set("SERVING");
logger.info({ config, grpcPort, metricsPort: opsAddress.port }, "metrics-service listening");

installShutdown(
  logger,
  [
    { name: "not serving", run: () => health.set("NOT_SERVING") },
    { name: "delay", run: () => sleep(config.SHUTDOWN_DELAY_MS) },
    { name: "drain grpc", run: () => stopGrpcServer(server, config.SHUTDOWN_TIMEOUT_MS - 1000) },
    { name: "abort handlers", run: () => shutdown.abort() },
    { name: "close ops", run: () => ops.close() },
  ],
  config.SHUTDOWN_TIMEOUT_MS,
);
