import type { ServiceImpl } from "@connectrpc/connect";
import {
  addReflection,
  createGrpcServer,
  createGrpcServerMetrics,
  HealthReporter,
  type Logger,
} from "@shadowmesh/common";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Registry } from "prom-client";
import type { Config } from "./config.js";
import { routes } from "./connect.js";

export interface ModelServerDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** The PredictService implementation; methods left out answer UNIMPLEMENTED. */
  predict: Partial<ServiceImpl<typeof PredictService>>;
  shutdownSignal?: AbortSignal;
}

/** Builds the gRPC server (PredictService, health, reflection, metrics) from its dependencies; never listens. */
export function createModelServer(deps: ModelServerDeps) {
  const server = createGrpcServer();
  const health = new HealthReporter([PredictService.typeName]);
  routes(server, deps.predict, {
    observer: createGrpcServerMetrics(deps.registry),
    logger: deps.logger,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
  });
  health.addToServer(server);
  addReflection(server, [PredictService]);
  return { server, health };
}
