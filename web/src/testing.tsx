import { type ConnectRouter, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { JSX } from "solid-js";
import { ClientsProvider } from "./clients";

/** Test helpers: the views get an in-memory Connect transport with whatever implementations a test gives. */
export interface FakeApi {
  predict?: Partial<ServiceImpl<typeof PredictService>>;
  metrics?: Partial<ServiceImpl<typeof MetricsService>>;
}

export function withApi(api: FakeApi, view: () => JSX.Element) {
  const transport = createRouterTransport((router: ConnectRouter) => {
    router.service(PredictService, api.predict ?? {});
    router.service(MetricsService, api.metrics ?? {});
  });
  return () => <ClientsProvider transport={transport}>{view()}</ClientsProvider>;
}
