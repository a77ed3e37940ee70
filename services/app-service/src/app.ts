import { setMaxListeners } from "node:events";
import type http from "node:http";
import { createGrpcClient, type Logger, PredictionReporter } from "@shadowmesh/common";
import { Health } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { Registry } from "prom-client";
import type { Config } from "./config.js";
import { createAppMetrics } from "./metrics.js";
import { MetricsForwarder } from "./metrics-forwarder.js";
import { Mirror } from "./mirror.js";
import { PredictForwarder } from "./predict-forwarder.js";
import { Readiness } from "./readiness.js";
import { createAppServer } from "./server.js";
import { UpstreamCaller } from "./upstream-call.js";

export interface App {
  readonly server: http.Server;
  readonly readiness: Readiness;
  readonly mirror: Mirror | undefined;
  /** Aborts the handler contexts of in-flight calls. */
  abortCalls(): void;
  /** Ends the live report streams (they never end by themselves). */
  endStreams(): void;
  /** Sends the queued records of failed mirrored calls, for at most `timeoutMs`. */
  flushReports(timeoutMs: number): Promise<void>;
  /** Stops the readiness checks and closes the gRPC channels. */
  closeClients(): void;
}

/**
 * Options of every gRPC channel app-service opens. Channelz bookkeeping costs time on every call and nothing here
 * reads it; grpc-js's own transparent retries are off because the forwarders retry UNAVAILABLE themselves, once,
 * with jitter and within the deadline (two retry layers would multiply attempts).
 */
const CHANNEL_OPTIONS = { "grpc.enable_channelz": 0, "grpc.enable_retries": 0 } as const;

/**
 * How failed mirrored calls are reported: at most 10 000 records queued (beyond that they are dropped and counted),
 * sent in batches of up to 500 every 200 ms, each attempt with a 2 s deadline, 3 attempts per batch.
 */
const MIRROR_REPORTS = {
  queueSize: 10_000,
  batchSize: 500,
  intervalMs: 200,
  timeoutMs: 2000,
  maxAttempts: 3,
} as const;

/** Wires app-service from its configuration: gRPC clients, forwarders, mirroring, readiness and the HTTP server. */
export function createApp(config: Config, logger: Logger, registry: Registry): App {
  const metrics = createAppMetrics(registry);
  const shutdown = new AbortController();
  const streams = new AbortController();
  // Every in-flight call listens on these (connect links each handler's signal to the shutdown signal): many
  // concurrent calls are normal, not a leak.
  setMaxListeners(0, shutdown.signal, streams.signal);
  const primary = createGrpcClient(PredictService, config.MODEL_SERVICE_ADDRESS, CHANNEL_OPTIONS);
  const health = createGrpcClient(Health, config.MODEL_SERVICE_ADDRESS, CHANNEL_OPTIONS);
  const shadow = config.SHADOW_ADDRESS
    ? createGrpcClient(PredictService, config.SHADOW_ADDRESS, CHANNEL_OPTIONS)
    : undefined;
  const metricsClient = createGrpcClient(MetricsService, config.METRICS_SERVICE_ADDRESS, CHANNEL_OPTIONS);
  // Failed mirrored calls are reported to metrics-service as the shadow's records (source MIRROR), with the same
  // bounded, batched, retrying reporter model-service uses for its own predictions.
  const reporter = shadow
    ? new PredictionReporter(
        metricsClient,
        {
          role: "SHADOW",
          source: "MIRROR",
          instance: config.INSTANCE,
          includeRawText: false,
          sampleRate: config.REPORT_SAMPLE_PERCENT / 100,
          ...MIRROR_REPORTS,
        },
        logger,
        {
          queueDepth: (depth) => metrics.mirrorReportQueueDepth.set(depth),
          dropped: (reason, count) => metrics.mirrorReportsDropped.inc({ reason }, count),
          sent: (count) => metrics.mirrorReportsSent.inc(count),
          retried: (count) => metrics.mirrorReportsRetried.inc(count),
        },
      )
    : undefined;
  reporter?.start();
  const mirror = shadow
    ? new Mirror({
        shadow,
        percent: config.MIRROR_PERCENT,
        maxInFlight: config.MAX_MIRRORS_IN_FLIGHT,
        metrics,
        logger,
        ...(reporter ? { reporter } : {}),
        faults: config.SHADOW_FAULTS,
      })
    : undefined;
  const readiness = new Readiness({
    health,
    intervalMs: config.READY_CHECK_INTERVAL_MS,
    logger,
    onResult: (serving) => metrics.upstreamReady.set(serving ? 1 : 0),
  });
  const retryJitterMs = config.RETRY_JITTER_MS;
  const predict = new PredictForwarder({
    primary,
    caller: new UpstreamCaller({ upstream: "model-service", metrics, logger, retryJitterMs }),
    ...(mirror ? { mirror } : {}),
    deadlineMs: config.DEADLINE_MS,
    feedbackSecret: config.FEEDBACK_SECRET,
  });
  const metricsService = new MetricsForwarder({
    client: metricsClient,
    caller: new UpstreamCaller({ upstream: "metrics-service", metrics, logger, retryJitterMs }),
    deadlineMs: config.DEADLINE_MS,
    streamsSignal: streams.signal,
  });
  const server = createAppServer({
    config,
    logger,
    metrics,
    predict,
    metricsService,
    shutdownSignal: shutdown.signal,
  });
  return {
    server,
    readiness,
    mirror,
    abortCalls: () => shutdown.abort(),
    endStreams: () => streams.abort(),
    flushReports: async (timeoutMs) => {
      await reporter?.close(timeoutMs);
    },
    closeClients: () => {
      readiness.stop();
      for (const client of [primary, health, shadow, metricsClient]) {
        client?.close();
      }
    },
  };
}
