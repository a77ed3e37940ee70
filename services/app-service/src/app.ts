import { setMaxListeners } from "node:events";
import type http from "node:http";
import { createClient } from "@connectrpc/connect";
import { type Logger, PredictionReporter } from "@shadowmesh/common";
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
import { type TransportFactory, type UpstreamTransport, upstreamTransport } from "./upstream.js";
import { UpstreamCaller } from "./upstream-call.js";

export interface App {
  readonly server: http.Server;
  readonly readiness: Readiness;
  /** One per shadow (candidate), in the order of the settings; empty without local mirroring. */
  readonly mirrors: readonly Mirror[];
  /** Aborts the handler contexts of in-flight calls. */
  abortCalls(): void;
  /** Ends the live report streams (they never end by themselves). */
  endStreams(): void;
  /** Sends the queued records of failed mirrored calls, for at most `timeoutMs`. */
  flushReports(timeoutMs: number): Promise<void>;
  /** Stops the readiness checks and closes the upstream connections. */
  closeClients(): void;
}

export interface AppDeps {
  /** Makes the transport to one upstream address; default `upstreamTransport` (gRPC over h2c). */
  transport?: TransportFactory;
}

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

/**
 * Wires app-service from its configuration: connect clients (`createClient(Service, transport)`) on one transport
 * per upstream address, forwarders, one mirror per shadow, readiness and the HTTP server.
 */
export function createApp(config: Config, logger: Logger, registry: Registry, deps: AppDeps = {}): App {
  const makeTransport = deps.transport ?? upstreamTransport;
  const metrics = createAppMetrics(registry);
  const shutdown = new AbortController();
  const streams = new AbortController();
  // Every in-flight call listens on these (connect links each handler's signal to the shutdown signal): many
  // concurrent calls are normal, not a leak.
  setMaxListeners(0, shutdown.signal, streams.signal);
  const transports: UpstreamTransport[] = [];
  const open = (address: string) => {
    const transport = makeTransport(address);
    transports.push(transport);
    return transport;
  };
  const primaryTransport = open(config.MODEL_SERVICE_ADDRESS);
  const primary = createClient(PredictService, primaryTransport);
  const health = createClient(Health, primaryTransport);
  const metricsClient = createClient(MetricsService, open(config.METRICS_SERVICE_ADDRESS));
  // Failed mirrored calls are reported to metrics-service as the shadows' records (source MIRROR, each naming its
  // candidate's model), with the same bounded, batched, retrying reporter model-service uses for its own predictions.
  const reporter =
    config.SHADOWS.length > 0
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
  // One mirror, one connection, one bound per shadow: a slow shadow holds only its own.
  const mirrors = config.SHADOWS.map(
    (target) =>
      new Mirror({
        target,
        client: createClient(PredictService, open(target.address)),
        metrics,
        logger,
        ...(reporter ? { reporter } : {}),
        faults: config.SHADOW_FAULTS,
      }),
  );
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
    mirrors,
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
    mirrors,
    abortCalls: () => shutdown.abort(),
    endStreams: () => streams.abort(),
    flushReports: async (timeoutMs) => {
      await reporter?.close(timeoutMs);
    },
    closeClients: () => {
      readiness.stop();
      for (const transport of transports) {
        transport.close();
      }
    },
  };
}
