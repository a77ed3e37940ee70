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
import { createModelServer } from "./server.js";

const config = readConfigOrExit("model-service", "serves an ONNX text classifier over gRPC.", help, readConfig);

const logger = createLogger("model-service", config.LOG_LEVEL);
const registry = createRegistry("model-service");
const shutdown = new AbortController();
const { server, health } = createModelServer({
  config,
  logger,
  registry,
  predict: {},
  shutdownSignal: shutdown.signal,
});
const ops = createOpsServer({ registry, ready: () => health.serving });

const grpcPort = await bindGrpcServer(server, config.HOST, config.GRPC_PORT);
const opsAddress = await ops.listen(config.METRICS_PORT, config.HOST);
health.set("SERVING");
logger.info({ config, grpcPort, metricsPort: opsAddress.port }, "model-service listening");

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
