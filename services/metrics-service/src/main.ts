import { runService } from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { createMetricsService, StoreOpenError } from "./service.js";

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
  create: (config, logger) => {
    try {
      return createMetricsService(config, { logger });
    } catch (error) {
      if (!(error instanceof StoreOpenError)) throw error;
      // An unusable data directory is a fault of the machine, not of the settings: exit 1 (as a port in use).
      logger.fatal({ err: error.message }, "cannot start");
      logger.flush();
      console.error(`metrics-service: ${error.message}`);
      process.exit(1);
    }
  },
});
