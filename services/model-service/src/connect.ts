import type { ServiceImpl } from "@connectrpc/connect";
import type { Routes } from "@shadowmesh/common";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";

/**
 * model-service's routes: which implementation serves which service. The same function is served by the grpc-js
 * server (registerRoutes, server.ts) and by connect-node (`connectNodeAdapter({ routes })`, the benchmark's
 * comparison server and in-memory `createRouterTransport` tests).
 */
export function predictRoutes(predict: Partial<ServiceImpl<typeof PredictService>>): Routes {
  return (router) => {
    router.service(PredictService, predict);
  };
}
