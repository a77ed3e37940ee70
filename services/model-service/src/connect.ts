import type { ServiceImpl } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { type AddServiceOptions, addService } from "@shadowmesh/common";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";

/** Routes only: which implementation serves which service. */
export function routes(
  server: grpc.Server,
  predict: Partial<ServiceImpl<typeof PredictService>>,
  options: AddServiceOptions,
): void {
  addService(server, PredictService, predict, options);
}
