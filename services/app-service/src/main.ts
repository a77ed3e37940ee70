import type { AddressInfo } from "node:net";
import {
  createLogger,
  createOpsServer,
  createRegistry,
  installShutdown,
  listenHttp,
  listenOrExit,
  readConfigOrExit,
  sleep,
} from "@shadowmesh/common";
import { createApp } from "./app.js";
import { help, readConfig } from "./config.js";
import { createDrainer } from "./drain.js";
import { describeFaults } from "./fault.js";
import { describeShadows } from "./shadows.js";

const config = readConfigOrExit(
  "app-service",
  "the public API (Connect, gRPC-web) in front of model-service and metrics-service; serves the web app.",
  help,
  () => readConfig(),
);
const logger = createLogger("app-service", config.LOG_LEVEL);
const registry = createRegistry("app-service");
let app: ReturnType<typeof createApp>;
try {
  app = createApp(config, logger, registry);
} catch (error) {
  console.error(`app-service: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
let stopping = false;
const ops = createOpsServer({ registry, ready: () => !stopping && app.readiness.ready });

const { server } = app;
const drainer = createDrainer(server);
await listenOrExit("app-service", { setting: "APP_SERVICE_PORT", host: config.HOST, port: config.PORT }, () =>
  listenHttp(server, config.PORT, config.HOST),
);
const opsAddress = await listenOrExit(
  "app-service",
  { setting: "APP_SERVICE_METRICS_PORT", host: config.HOST, port: config.METRICS_PORT },
  () => ops.listen(config.METRICS_PORT, config.HOST),
);
logger.info(
  {
    // The feedback secret is never logged, only whether one is set.
    config: { ...config, FEEDBACK_SECRET: config.FEEDBACK_SECRET === "" ? "" : "(set)" },
    port: (server.address() as AddressInfo).port,
    metricsPort: opsAddress.port,
    mirroring: describeShadows(config.SHADOWS),
    web: config.WEB_DIR || "not served",
    shadowFaults: describeFaults(config.SHADOW_FAULTS),
  },
  "app-service listening",
);
// Ready as soon as the primary model-service answers its health check; checked again every interval.
void app.readiness.start();

/**
 * Stops accepting, lets in-flight unary calls finish while closing every connection (busy keep-alive ones too) as
 * its response ends, then cancels whatever is left.
 */
const drain = async (timeoutMs: number) => {
  app.endStreams();
  await drainer.drain(timeoutMs, () => app.abortCalls());
};

installShutdown(
  logger,
  [
    {
      name: "not ready",
      run: () => {
        stopping = true;
      },
    },
    { name: "delay", run: () => sleep(config.SHUTDOWN_DELAY_MS) },
    {
      name: "drain http",
      run: () => drain(Math.max(500, config.SHUTDOWN_TIMEOUT_MS - config.SHUTDOWN_DELAY_MS - 1500)),
    },
    { name: "flush mirror reports", run: () => app.flushReports(1000) },
    { name: "close clients", run: () => app.closeClients() },
    { name: "close ops", run: () => ops.close() },
  ],
  config.SHUTDOWN_TIMEOUT_MS,
);
