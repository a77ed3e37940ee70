import type { ServiceImpl } from "@connectrpc/connect";
import {
  addReflection,
  createGrpcServer,
  createGrpcServerMetrics,
  HealthReporter,
  type Logger,
} from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { Registry } from "prom-client";
import type { Config } from "./config.js";
import { routes } from "./connect.js";

export interface MetricsServerDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** The MetricsService implementation; methods left out answer UNIMPLEMENTED. */
  metrics: Partial<ServiceImpl<typeof MetricsService>>;
  shutdownSignal?: AbortSignal;
}

/** Builds the gRPC server (MetricsService, health, reflection, metrics) from its dependencies; never listens. */
export function createMetricsServer(deps: MetricsServerDeps) {
  const server = createGrpcServer();
  const health = new HealthReporter([MetricsService.typeName]);
  routes(server, deps.metrics, {
    observer: createGrpcServerMetrics(deps.registry),
    logger: deps.logger,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
  });
  health.addToServer(server);
  addReflection(server, [MetricsService]);
  return { server, health };
}
