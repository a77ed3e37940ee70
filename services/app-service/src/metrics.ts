import { Counter, Gauge, Histogram, type Registry, Summary } from "prom-client";

/**
 * app-service's Prometheus metrics.
 *
 * The seed's three, by meaning: a request counter by method and code (REQUEST_COUNT), an in-progress gauge by
 * method (IN_PROGRESS_REQUESTS) and a latency summary (REQUEST_LATENCY), plus a latency histogram (aggregatable
 * across replicas, which a summary is not). Methods are labelled `service` + `method` as in the grpc-ecosystem
 * metrics; codes are gRPC code names ("OK", "InvalidArgument", …) whatever protocol the client spoke.
 */
export interface AppMetrics {
  readonly requests: Counter<"service" | "method" | "code">;
  readonly inProgress: Gauge<"service" | "method">;
  readonly latency: Summary<"service" | "method">;
  readonly duration: Histogram<"service" | "method">;
  readonly upstreamCalls: Counter<"upstream" | "method" | "code">;
  readonly upstreamRetries: Counter<"upstream" | "method">;
  readonly mirrorSent: Counter<"shadow" | "method">;
  readonly mirrorSampledOut: Counter<"shadow" | "method">;
  readonly mirrorDropped: Counter<"shadow" | "method" | "reason">;
  readonly mirrorFailed: Counter<"shadow" | "method" | "code">;
  readonly shadowFaultsInjected: Counter<"shadow" | "kind">;
  readonly mirrorInFlight: Gauge<"shadow">;
  readonly mirrorReportsSent: Counter;
  readonly mirrorReportsDropped: Counter<"reason">;
  readonly mirrorReportsRetried: Counter;
  readonly mirrorReportQueueDepth: Gauge;
  readonly upstreamReady: Gauge;
}

export function createAppMetrics(registry: Registry): AppMetrics {
  const registers = [registry];
  const metrics: AppMetrics = {
    requests: new Counter({
      name: "app_requests_total",
      help: "RPCs completed by app-service, by method and gRPC code (REQUEST_COUNT).",
      labelNames: ["service", "method", "code"] as const,
      registers,
    }),
    inProgress: new Gauge({
      name: "app_requests_in_progress",
      help: "RPCs app-service is handling right now, by method (IN_PROGRESS_REQUESTS).",
      labelNames: ["service", "method"] as const,
      registers,
    }),
    latency: new Summary({
      name: "app_request_latency_seconds",
      help: "Time app-service took to answer an RPC, by method (REQUEST_LATENCY), over the last 10 minutes.",
      labelNames: ["service", "method"] as const,
      percentiles: [0.5, 0.9, 0.99],
      maxAgeSeconds: 600,
      ageBuckets: 5,
      registers,
    }),
    duration: new Histogram({
      name: "app_request_duration_seconds",
      help: "Time app-service took to answer an RPC, by method, as a histogram.",
      labelNames: ["service", "method"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    upstreamCalls: new Counter({
      name: "app_upstream_calls_total",
      help: "Calls app-service made to model-service and metrics-service, by upstream, method and gRPC code.",
      labelNames: ["upstream", "method", "code"] as const,
      registers,
    }),
    upstreamRetries: new Counter({
      name: "app_upstream_retries_total",
      help: "Idempotent calls retried once after the upstream answered UNAVAILABLE.",
      labelNames: ["upstream", "method"] as const,
      registers,
    }),
    mirrorSent: new Counter({
      name: "app_mirror_sent_total",
      help: "Calls mirrored to a shadow model-service (fire and forget), by shadow (candidate).",
      labelNames: ["shadow", "method"] as const,
      registers,
    }),
    mirrorSampledOut: new Counter({
      name: "app_mirror_sampled_out_total",
      help: "Calls not mirrored to a shadow because they fell outside its mirror percentage.",
      labelNames: ["shadow", "method"] as const,
      registers,
    }),
    mirrorDropped: new Counter({
      name: "app_mirror_dropped_total",
      help: "Calls that should have been mirrored to a shadow but were dropped, by reason (in_flight_limit).",
      labelNames: ["shadow", "method", "reason"] as const,
      registers,
    }),
    mirrorFailed: new Counter({
      name: "app_mirror_failed_total",
      help: "Mirrored calls a shadow answered with an error, by gRPC code (the user never sees these).",
      labelNames: ["shadow", "method", "code"] as const,
      registers,
    }),
    shadowFaultsInjected: new Counter({
      name: "app_shadow_faults_injected_total",
      help: "Faults injected into mirrored calls by the APP_SERVICE_SHADOW_FAULT_* settings, by kind (delay, abort).",
      labelNames: ["shadow", "kind"] as const,
      registers,
    }),
    mirrorInFlight: new Gauge({
      name: "app_mirror_in_flight",
      help: "Mirrored calls waiting for a shadow right now, by shadow.",
      labelNames: ["shadow"] as const,
      registers,
    }),
    mirrorReportsSent: new Counter({
      name: "app_mirror_reports_sent_total",
      help: "Records of failed mirrored calls (role SHADOW, source MIRROR) delivered to metrics-service.",
      registers,
    }),
    mirrorReportsDropped: new Counter({
      name: "app_mirror_reports_dropped_total",
      help: "Records of failed mirrored calls dropped instead of delivered, by reason (queue_full, send_failed, shutdown).",
      labelNames: ["reason"] as const,
      registers,
    }),
    mirrorReportsRetried: new Counter({
      name: "app_mirror_reports_retried_total",
      help: "Records of failed mirrored calls sent again after a failed or timed-out ReportPredictions attempt.",
      registers,
    }),
    mirrorReportQueueDepth: new Gauge({
      name: "app_mirror_report_queue_depth",
      help: "Records of failed mirrored calls waiting to be reported to metrics-service.",
      registers,
    }),
    upstreamReady: new Gauge({
      name: "app_model_service_ready",
      help: "1 when the primary model-service answered its last health check with SERVING, else 0.",
      registers,
    }),
  };
  // Present from the start (0), so that dashboards and alerts see the series before the first failure.
  for (const reason of ["queue_full", "send_failed", "shutdown"]) {
    metrics.mirrorReportsDropped.inc({ reason }, 0);
  }
  return metrics;
}
