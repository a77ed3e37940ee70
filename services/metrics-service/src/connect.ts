import type { ServiceImpl } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { type AddServiceOptions, addService } from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";

/** Routes only: which implementation serves which service. */
export function routes(
  server: grpc.Server,
  metrics: Partial<ServiceImpl<typeof MetricsService>>,
  options: AddServiceOptions,
): void {
  addService(server, MetricsService, metrics, options);
}
