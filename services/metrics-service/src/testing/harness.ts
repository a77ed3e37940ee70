import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcJsTransport, createLogger } from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { readConfig } from "../config.js";
import { createMetricsService } from "../service.js";

/** connect's client over one grpc-js channel to `address` (createGrpcJsTransport), with `close()` for the channel. */
export function grpcClient<S extends DescService>(
  service: S,
  address: string,
): Client<S> & { close(): void } {
  const transport = createGrpcJsTransport({ address });
  return Object.assign(createClient(service, transport), { close: () => transport.close() });
}

/**
 * The production metrics-service (createMetricsService: the same listen → ready → stop that main.ts runs) in this
 * process on 127.0.0.1 (port 0) over a temporary store, and a client for it. `stop()` is the production stop (health
 * NOT_SERVING, streams ended, drain, retention, report worker, store closed, ops server closed), then the store's
 * directory is removed.
 */
export async function startTestServer(env: Record<string, string> = {}, now?: () => number) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "metrics-service-"));
  const config = readConfig({
    METRICS_SERVICE_DATA_DIR: dataDir,
    METRICS_SERVICE_HOST: "127.0.0.1",
    METRICS_SERVICE_GRPC_PORT: "0",
    METRICS_SERVICE_METRICS_PORT: "0",
    METRICS_SERVICE_LOG_LEVEL: "silent",
    METRICS_SERVICE_WATCH_INTERVAL_MS: "20",
    METRICS_SERVICE_WATCH_MIN_INTERVAL_MS: "10",
    METRICS_SERVICE_SHUTDOWN_DELAY_MS: "0",
    METRICS_SERVICE_SHUTDOWN_TIMEOUT_MS: "3000",
    ...env,
  });
  const metrics = createMetricsService(config, {
    logger: createLogger("metrics-service", config.LOG_LEVEL),
    ...(now ? { now } : {}),
  });
  let ports: Awaited<ReturnType<typeof metrics.listen>>;
  try {
    ports = await metrics.listen();
    await metrics.ready();
  } catch (error) {
    await metrics.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const client = grpcClient(MetricsService, `127.0.0.1:${ports.grpc}`);
  let stopped: Promise<void> | undefined;
  return {
    server: metrics.server,
    health: metrics.health,
    service: metrics.service,
    retention: metrics.retention,
    engine: metrics.engine,
    config,
    store: metrics.store,
    registry: metrics.registry,
    /** Aborting it ends the live report streams with UNAVAILABLE, as the drain does. */
    shutdown: metrics.shutdown,
    /** The Service itself (listen, ready, stop, reload). */
    metrics,
    client,
    port: ports.grpc,
    /** `{ grpc, metrics }`: the gRPC and the ops (/metrics, /readyz) ports. */
    ports,
    /** The production stop, then the client is closed and the store's directory removed; idempotent. */
    stop() {
      stopped ??= (async () => {
        try {
          await metrics.stop();
        } finally {
          client.close();
          rmSync(dataDir, { recursive: true, force: true });
        }
      })();
      return stopped;
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;
