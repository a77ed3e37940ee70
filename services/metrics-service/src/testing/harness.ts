import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  bindGrpcServer,
  createGrpcClient,
  createLogger,
  createRegistry,
  stopGrpcServer,
} from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { readConfig } from "../config.js";
import { createMetricsServer } from "../server.js";
import { ShadowStore } from "../store.js";

/** A real metrics-service gRPC server on 127.0.0.1 (port 0) over a temporary store, and a client for it. */
export async function startTestServer(env: Record<string, string> = {}, now?: () => number) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "metrics-service-"));
  const config = readConfig({
    METRICS_SERVICE_DATA_DIR: dataDir,
    METRICS_SERVICE_GRPC_PORT: "0",
    METRICS_SERVICE_METRICS_PORT: "0",
    METRICS_SERVICE_LOG_LEVEL: "silent",
    METRICS_SERVICE_WATCH_INTERVAL_MS: "20",
    METRICS_SERVICE_WATCH_MIN_INTERVAL_MS: "10",
    ...env,
  });
  const store = new ShadowStore({ dataDir });
  const registry = createRegistry("metrics-service");
  const shutdown = new AbortController();
  const logger = createLogger("metrics-service", "silent");
  const built = createMetricsServer({
    config,
    logger,
    registry,
    store,
    shutdownSignal: shutdown.signal,
    ...(now ? { now } : {}),
  });
  const port = await bindGrpcServer(built.server, "127.0.0.1", 0);
  built.health.set("SERVING");
  const client = createGrpcClient(MetricsService, `127.0.0.1:${port}`);
  let stopped = false;
  return {
    ...built,
    config,
    store,
    registry,
    client,
    port,
    shutdown,
    async stop() {
      if (stopped) {
        return;
      }
      stopped = true;
      client.close();
      shutdown.abort();
      built.retention.stop();
      await built.engine.close();
      await stopGrpcServer(built.server, 2000);
      store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;
