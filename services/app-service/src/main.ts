import { runService } from "@shadowmesh/common";
import { createAppService } from "./app-service.js";
import { help, readConfig } from "./config.js";
import { describeFaults } from "./fault.js";
import { describeShadows } from "./shadows.js";

await runService({
  name: "app-service",
  about:
    "the public API (Connect, gRPC-web) in front of model-service and metrics-service; serves the web app.",
  help,
  readConfig: () => readConfig(),
  logLevel: (config) => config.LOG_LEVEL,
  shutdownTimeoutMs: (config) => config.SHUTDOWN_TIMEOUT_MS,
  // The feedback secret is never logged, only whether one is set.
  loggable: (config) => ({
    ...config,
    FEEDBACK_SECRET: config.FEEDBACK_SECRET === "" ? "" : "(set)",
    mirroring: describeShadows(config.SHADOWS),
    web: config.WEB_DIR || "not served",
    shadowFaults: describeFaults(config.SHADOW_FAULTS),
  }),
  create: (config, logger) => createAppService(config, logger),
});
