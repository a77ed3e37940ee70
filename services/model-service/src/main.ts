import { runService } from "@shadowmesh/common";
import { help, readConfig } from "./config.js";
import { createModelService } from "./model-service.js";

await runService({
  name: "model-service",
  about: "serves an ONNX text classifier over gRPC.",
  help,
  readConfig: () => readConfig(),
  logLevel: (config) => config.LOG_LEVEL,
  shutdownTimeoutMs: (config) => config.SHUTDOWN_TIMEOUT_MS,
  create: (config, logger) => createModelService(config, { logger }),
});
