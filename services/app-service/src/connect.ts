import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";

/** The browser-facing part of MetricsService; ReportPredictions is internal and never routed here. */
export type PublicMetricsImpl = Pick<
  ServiceImpl<typeof MetricsService>,
  "submitFeedback" | "getShadowReport" | "watchShadowReport" | "listCandidates"
>;

/** Routes only: which implementation serves which RPC. */
export function routes(predict: ServiceImpl<typeof PredictService>, metrics: PublicMetricsImpl) {
  return (router: ConnectRouter) => {
    router.service(PredictService, predict);
    // Bound: the implementations are class instances with private state.
    router.rpc(MetricsService.method.submitFeedback, metrics.submitFeedback.bind(metrics));
    router.rpc(MetricsService.method.getShadowReport, metrics.getShadowReport.bind(metrics));
    router.rpc(MetricsService.method.watchShadowReport, metrics.watchShadowReport.bind(metrics));
    router.rpc(MetricsService.method.listCandidates, metrics.listCandidates.bind(metrics));
  };
}
