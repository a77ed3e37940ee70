import {
  bindGrpcServer,
  createLogger,
  createOpsServer,
  createRegistry,
  installShutdown,
  listenOrExit,
  readConfigOrExit,
  sleep,
  stopGrpcServer,
} from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { createMetricsServer } from "./server.js";
import { ShadowStore } from "./store.js";

const config = readConfigOrExit(
  "metrics-service",
  "joins primary and shadow predictions by request id and reports on the shadow model.",
  help,
  readConfig,
);

const logger = createLogger("metrics-service", config.LOG_LEVEL);
let store: ShadowStore;
try {
  store = new ShadowStore({
    dataDir: config.DATA_DIR,
    synchronous: config.SQLITE_SYNCHRONOUS === "NORMAL" ? "NORMAL" : "FULL",
  });
} catch (error) {
  console.error(
    `metrics-service: cannot open the store in ${config.DATA_DIR}: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
}
const registry = createRegistry("metrics-service");
const shutdown = new AbortController();
const { server, health, retention, engine } = createMetricsServer({
  config,
  logger,
  registry,
  store,
  shutdownSignal: shutdown.signal,
});
const ops = createOpsServer({ registry, ready: () => health.serving });

const grpcPort = await listenOrExit(
  "metrics-service",
  { setting: "METRICS_SERVICE_GRPC_PORT", host: config.HOST, port: config.GRPC_PORT },
  () => bindGrpcServer(server, config.HOST, config.GRPC_PORT),
);
const opsAddress = await listenOrExit(
  "metrics-service",
  { setting: "METRICS_SERVICE_METRICS_PORT", host: config.HOST, port: config.METRICS_PORT },
  () => ops.listen(config.METRICS_PORT, config.HOST),
);
health.set("SERVING");
logger.info(
  { config, grpcPort, metricsPort: opsAddress.port, store: store.file, ...store.counts() },
  "metrics-service listening",
);

installShutdown(
  logger,
  [
    { name: "not serving", run: () => health.set("NOT_SERVING") },
    { name: "delay", run: () => sleep(config.SHUTDOWN_DELAY_MS) },
    // Live report streams never end by themselves: end them first (UNAVAILABLE, so clients reconnect elsewhere),
    // then drain the unary calls.
    { name: "end streams", run: () => shutdown.abort() },
    {
      name: "drain grpc",
      run: () => stopGrpcServer(server, Math.max(1000, config.SHUTDOWN_TIMEOUT_MS - 2000)),
    },
    { name: "stop retention", run: () => retention.stop() },
    { name: "stop report worker", run: () => engine.close() },
    { name: "close store", run: () => store.close() },
    { name: "close ops", run: () => ops.close() },
  ],
  config.SHUTDOWN_TIMEOUT_MS,
);
