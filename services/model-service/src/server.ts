import type { ServiceImpl } from "@connectrpc/connect";
import {
  addReflection,
  createGrpcServer,
  createGrpcServerMetrics,
  HealthReporter,
  type Logger,
  registerRoutes,
} from "@shadowmesh/common";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Registry } from "prom-client";
import { predictRoutes } from "./connect.js";

export interface ModelServerDeps {
  logger: Logger;
  registry: Registry;
  /** The PredictService implementation; methods left out answer UNIMPLEMENTED. */
  predict: Partial<ServiceImpl<typeof PredictService>>;
  /** Largest request message accepted (RESOURCE_EXHAUSTED above). */
  maxReceiveMessageBytes: number;
  shutdownSignal?: AbortSignal;
}

/** Builds the gRPC server (PredictService, health, reflection, metrics) from its dependencies; never listens. */
export function createModelServer(deps: ModelServerDeps) {
  const server = createGrpcServer({ maxReceiveMessageBytes: deps.maxReceiveMessageBytes });
  const health = new HealthReporter([PredictService.typeName]);
  registerRoutes(server, predictRoutes(deps.predict), {
    observer: createGrpcServerMetrics(deps.registry),
    logger: deps.logger,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
  });
  health.addToServer(server);
  addReflection(server, [PredictService]);
  return { server, health };
}
