import { createLogger, installShutdown, readConfigOrExit } from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { ModelLoadError } from "./model.js";
import { createModelService } from "./model-service.js";

const config = readConfigOrExit(
  "model-service",
  "serves an ONNX text classifier over gRPC.",
  help,
  readConfig,
);

const logger = createLogger("model-service", config.LOG_LEVEL);
logger.info({ config }, "starting");
const service = createModelService({ config, logger });

installShutdown(logger, [{ name: "graceful stop", run: () => service.stop() }], config.SHUTDOWN_TIMEOUT_MS);
process.on("SIGHUP", () => {
  void service.reload("SIGHUP");
});

try {
  await service.start();
} catch (error) {
  // Start-up validation failed: one readable line naming the file and the problem, and a non-zero exit.
  const line =
    error instanceof ModelLoadError ? error.message : error instanceof Error ? error.message : String(error);
  logger.fatal({ err: line }, "cannot start");
  logger.flush();
  console.error(`model-service: ${line}`);
  process.exit(1);
}
