import type { ServiceImpl } from "@connectrpc/connect";
import {
  addReflection,
  createGrpcServer,
  createGrpcServerMetrics,
  HealthReporter,
  type Logger,
  type Routes,
  registerRoutes,
} from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { Registry } from "prom-client";
import { parseMirrorPercents } from "./candidates.js";
import { type Config, MAX_DISAGREEMENTS_LIMIT } from "./config.js";
import { ShadowMetricsService, type ShadowServiceOptions } from "./metrics-service.js";
import { createShadowMetrics } from "./prometheus.js";
import { createAggregateEngine } from "./report-engine.js";
import { startRetention } from "./retention.js";
import type { ShadowStore } from "./store.js";

export interface MetricsServerDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  store: ShadowStore;
  /** Aborted when the server shuts down: ends live report streams and tells handlers through `context.signal`. */
  shutdownSignal?: AbortSignal;
  /** The clock (ms since the epoch); tests inject one. */
  now?: () => number;
}

/**
 * metrics-service's routes: which implementation serves which service. The grpc-js server serves them through
 * registerRoutes; the same function can be given to connect-node (`connectNodeAdapter({ routes })`) or to an
 * in-memory `createRouterTransport(routes)`.
 */
export function metricsRoutes(metrics: Partial<ServiceImpl<typeof MetricsService>>): Routes {
  return (router) => {
    router.service(MetricsService, metrics);
  };
}

/** The service's behaviour, from the configuration. */
export function serviceOptionsOf(config: Config): ShadowServiceOptions {
  return {
    joinWindowMs: config.JOIN_WINDOW_MS,
    defaultWindowMs: config.REPORT_WINDOW_MS,
    maxWindowMs: config.RETENTION_HOURS * 3_600_000,
    defaultMaxDisagreements: config.MAX_DISAGREEMENTS,
    maxDisagreementsLimit: MAX_DISAGREEMENTS_LIMIT,
    storeRawText: config.STORE_RAW_TEXT,
    maxRecordsPerBatch: config.MAX_RECORDS_PER_BATCH,
    maxCandidates: config.MAX_CANDIDATES,
    watchIntervalMs: config.WATCH_INTERVAL_MS,
    watchMinIntervalMs: config.WATCH_MIN_INTERVAL_MS,
    watchRefreshMs: config.WATCH_REFRESH_MS,
    thresholds: {
      minPairs: config.VERDICT_MIN_PAIRS,
      minAgreement: config.VERDICT_MIN_AGREEMENT,
      maxErrorRateIncrease: config.VERDICT_MAX_ERROR_RATE_INCREASE,
      maxLatencyP99Ratio: config.VERDICT_MAX_LATENCY_P99_RATIO,
      latencySlackMs: config.VERDICT_LATENCY_SLACK_MS,
      minFeedback: config.VERDICT_MIN_FEEDBACK,
      maxAccuracyDrop: config.VERDICT_MAX_ACCURACY_DROP,
      minCoverage: config.VERDICT_MIN_COVERAGE,
      maxShadowSilenceMs: config.VERDICT_MAX_SHADOW_SILENCE_MS,
    },
    expectedMirrorRatio: config.EXPECTED_MIRROR_PERCENT / 100,
    expectedMirrorRatios: parseMirrorPercents(config.EXPECTED_MIRROR_PERCENTS),
    feedbackSecret: config.FEEDBACK_SECRET,
    retentionMs: config.RETENTION_HOURS * 3_600_000,
    reportSampleRatio: config.REPORT_SAMPLE_PERCENT / 100,
  };
}

/**
 * Builds the gRPC server (MetricsService routes, health, reflection, grpc metrics), the shadow gauges and the
 * retention sweep from their dependencies; never listens. createMetricsService (service.ts) puts them on the common
 * skeleton: `retention.stop()` and `engine.close()` run in its close step, before the store is closed.
 */
export function createMetricsServer(deps: MetricsServerDeps) {
  const { config, logger, registry, store } = deps;
  const options = serviceOptionsOf(config);
  // The gauges' reports (one per candidate) are computed at once from the aggregates, never queued behind API reports.
  const shadowMetrics = createShadowMetrics({
    registry,
    reports: () => service.gaugeReports(config.REPORT_WINDOW_MS),
    lastReportDurationMs: () => service.lastReportDurationMs,
    windowMs: config.REPORT_WINDOW_MS,
  });
  // Reports are summed from the aggregates the store keeps at ingest, through a bounded queue.
  store.useJoinWindow(config.JOIN_WINDOW_MS);
  const engine = createAggregateEngine(store);
  const service = new ShadowMetricsService({
    store,
    engine,
    options,
    observer: shadowMetrics,
    logger,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const server = createGrpcServer();
  const health = new HealthReporter([MetricsService.typeName]);
  registerRoutes(server, metricsRoutes(service), {
    observer: createGrpcServerMetrics(registry),
    logger,
    ...(deps.shutdownSignal ? { shutdownSignal: deps.shutdownSignal } : {}),
  });
  health.addToServer(server);
  addReflection(server, [MetricsService]);
  const retention = startRetention({
    store,
    retentionMs: config.RETENTION_HOURS * 3_600_000,
    intervalMs: config.RETENTION_INTERVAL_MS,
    logger,
    onDeleted: (deleted) => shadowMetrics.retention(deleted),
    ...(deps.now ? { now: deps.now } : {}),
  });
  return { server, health, service, retention, engine };
}
