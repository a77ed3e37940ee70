import type { AddressInfo } from "node:net";
import {
  createLogger,
  createOpsServer,
  createRegistry,
  installShutdown,
  readConfigOrExit,
  sleep,
} from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { createAppServer, notImplemented } from "./server.js";

const config = readConfigOrExit(
  "app-service",
  "the public API (Connect, gRPC-web) in front of model-service and metrics-service.",
  help,
  readConfig,
);
const logger = createLogger("app-service", config.LOG_LEVEL);
const registry = createRegistry("app-service");
const shutdown = new AbortController();
let ready = false;

const server = createAppServer({
  config,
  logger,
  shutdownSignal: shutdown.signal,
  predict: {
    predict: () => notImplemented("Predict"),
    predictBatch: () => notImplemented("PredictBatch"),
    getModel: () => notImplemented("GetModel"),
  },
  metrics: {
    submitFeedback: () => notImplemented("SubmitFeedback"),
    getShadowReport: () => notImplemented("GetShadowReport"),
    watchShadowReport: () => notImplemented("WatchShadowReport"),
  },
});
const ops = createOpsServer({ registry, ready: () => ready });

await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(config.PORT, config.HOST, () => resolve());
});
const opsAddress = await ops.listen(config.METRICS_PORT, config.HOST);
ready = true;
logger.info(
  { config, port: (server.address() as AddressInfo).port, metricsPort: opsAddress.port },
  "app-service listening",
);

installShutdown(
  logger,
  [
    { name: "not ready", run: () => (ready = false) as unknown as void },
    { name: "delay", run: () => sleep(config.SHUTDOWN_DELAY_MS) },
    {
      name: "drain http",
      run: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          shutdown.abort();
        }),
    },
    { name: "close ops", run: () => ops.close() },
  ],
  config.SHUTDOWN_TIMEOUT_MS,
);
