import { runService } from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { createMetricsService } from "./service.js";

await runService({
  name: "metrics-service",
  about:
    "joins the primary's predictions with each candidate's by request id and reports on every candidate.",
  help,
  readConfig: () => readConfig(),
  logLevel: (config) => config.LOG_LEVEL,
  shutdownTimeoutMs: (config) => config.SHUTDOWN_TIMEOUT_MS,
  // The feedback secret is never logged: only whether one is set.
  loggable: (config) => ({ ...config, FEEDBACK_SECRET: config.FEEDBACK_SECRET === "" ? "" : "(set)" }),
  create: (config, logger) => createMetricsService(config, { logger }),
});
