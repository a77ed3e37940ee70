import { createClient } from "@connectrpc/connect";
import {
  bindGrpcServer,
  createGrpcJsTransport,
  createLogger,
  createService,
  type GrpcJsTransport,
  type Logger,
  listenOn,
  type Service,
  stopGrpcServer,
} from "@shadowmesh/common";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import type { Registry } from "prom-client";
import { Batcher } from "./batcher.js";
import { type Config, PREFIX } from "./config.js";
import { createModelMetrics, createModelRegistry } from "./metrics.js";
import { loadModel } from "./model.js";
import { type ModelLoader, ModelManager } from "./model-manager.js";
import { PredictServiceImpl } from "./predict-service.js";
import { PredictionReporter, type ReportSink } from "./reporter.js";
import { createModelServer } from "./server.js";

export interface ModelServiceDeps {
  /** The service's logger; one at config.LOG_LEVEL by default. */
  logger?: Logger;
  /** Loads a model directory; `loadModel` by default (tests inject slow or failing models). */
  loader?: ModelLoader;
  /** Where prediction records go; a MetricsService client at METRICS_SERVICE_ADDRESS by default. */
  reportSink?: ReportSink;
  registry?: Registry;
}

/**
 * The whole model-service, wired from its configuration: model manager (hot reload), dynamic batcher, reporter,
 * PredictService (routes, connect.ts), health, reflection — built on the common skeleton (createService), which
 * adds the ops server and runs listen → ready and the graceful stop in the fixed order. main.ts is runService, so
 * tests run the same thing in-process.
 */
export function createModelService(config: Config, deps: ModelServiceDeps = {}) {
  const logger = deps.logger ?? createLogger("model-service", config.LOG_LEVEL);
  const registry = deps.registry ?? createModelRegistry(config.ROLE);
  const metrics = createModelMetrics(registry);
  const loader: ModelLoader =
    deps.loader ?? ((dir) => loadModel(dir, { intraOpThreads: config.INTRA_OP_THREADS }));
  const models = new ModelManager(config.MODEL_DIR, loader, logger, {
    loaded: (model, previous) => {
      metrics.loaded(model.info, previous?.info);
      logger.info(
        {
          model: model.info.name,
          version: model.info.version,
          sha256: model.info.sha256,
          loadMs: Math.round(model.info.loadMs * 10) / 10,
          dir: model.info.dir,
        },
        "model loaded",
      );
    },
    reloaded: (result) => metrics.reloaded(result),
  });
  const batcher = new Batcher(
    models,
    { enabled: config.BATCHING, maxBatchSize: config.BATCH_MAX_SIZE, maxWaitUs: config.BATCH_MAX_WAIT_US },
    metrics,
  );
  const transport: GrpcJsTransport | undefined =
    deps.reportSink || config.METRICS_SERVICE_ADDRESS === ""
      ? undefined
      : createGrpcJsTransport({ address: config.METRICS_SERVICE_ADDRESS });
  const reporter = new PredictionReporter(
    deps.reportSink ?? (transport ? createClient(MetricsService, transport) : undefined),
    {
      role: config.ROLE,
      instance: config.INSTANCE,
      includeRawText: config.REPORT_RAW_TEXT,
      queueSize: config.REPORT_QUEUE_SIZE,
      batchSize: config.REPORT_BATCH_SIZE,
      intervalMs: config.REPORT_INTERVAL_MS,
      timeoutMs: config.REPORT_TIMEOUT_MS,
      sampleRate: config.REPORT_SAMPLE_PERCENT / 100,
    },
    logger,
    metrics,
  );
  const predict = new PredictServiceImpl({
    models,
    batcher,
    reporter,
    metrics,
    logger,
    maxRequestTexts: config.PREDICT_BATCH_MAX_TEXTS,
  });
  const shutdown = new AbortController();
  const { server, health } = createModelServer({
    logger,
    registry,
    predict,
    maxReceiveMessageBytes: config.MAX_RECEIVE_BYTES,
    shutdownSignal: shutdown.signal,
  });

  const service: Service = createService(
    {
      /** The gRPC port; health answers NOT_SERVING until start has verified the model. */
      listen: async () => ({
        grpc: await listenOn(
          { setting: `${PREFIX}GRPC_PORT`, host: config.HOST, port: config.GRPC_PORT },
          () => bindGrpcServer(server, config.HOST, config.GRPC_PORT),
        ),
      }),
      /** Loads and verifies the model, then reports SERVING. Rejects with a ModelLoadError if it cannot serve it. */
      start: async () => {
        await models.start();
        if (config.WATCH_MODEL) {
          models.watch();
        }
        reporter.start();
        health.set("SERVING");
        logger.info({ role: config.ROLE }, "serving");
      },
      ready: () => health.serving,
      notServing: () => health.set("NOT_SERVING"),
      drain: async (timeoutMs) => {
        await stopGrpcServer(server, timeoutMs);
        shutdown.abort();
      },
      flush: (timeoutMs) => reporter.close(timeoutMs),
      close: async () => {
        transport?.close();
        await models.close();
      },
      /** Loads the model directory again (SIGHUP); the old model keeps serving if the new one is broken. */
      reload: (reason) => models.reload(reason),
    },
    {
      name: "model-service",
      logger,
      registry,
      host: config.HOST,
      metricsPort: config.METRICS_PORT,
      metricsPortSetting: `${PREFIX}METRICS_PORT`,
      shutdownDelayMs: config.SHUTDOWN_DELAY_MS,
      shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
      flushTimeoutMs: config.REPORT_FLUSH_TIMEOUT_MS,
    },
  );

  return Object.assign(service, {
    server,
    health,
    registry,
    models,
    batcher,
    reporter,
    predict,
    /** Loads the model directory again; resolves to the ModelManager's result ("loaded", "unchanged", "failed"). */
    reload: (reason: string) => models.reload(reason),
  });
}

export type ModelService = ReturnType<typeof createModelService>;
