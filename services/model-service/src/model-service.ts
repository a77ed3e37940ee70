import {
  bindGrpcServer,
  createGrpcClient,
  createOpsServer,
  type Logger,
  listenOn,
  type OpsServer,
  sleep,
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
  config: Config;
  logger: Logger;
  /** Loads a model directory; `loadModel` by default (tests inject slow or failing models). */
  loader?: ModelLoader;
  /** Where prediction records go; a grpc-js MetricsService client at METRICS_SERVICE_ADDRESS by default. */
  reportSink?: ReportSink;
  registry?: Registry;
}

export interface ListeningAddresses {
  grpcPort: number;
  metricsPort: number;
}

/**
 * The whole model-service, wired from its configuration: model manager (hot reload), dynamic batcher, reporter,
 * PredictService, health, reflection and the ops HTTP server. `start` listens and loads the model; `stop` is the
 * graceful shutdown. main.ts adds only signals and exit codes, so tests run the same thing in-process.
 */
export function createModelService(deps: ModelServiceDeps) {
  const { config, logger } = deps;
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
  const client =
    deps.reportSink || config.METRICS_SERVICE_ADDRESS === ""
      ? undefined
      : createGrpcClient(MetricsService, config.METRICS_SERVICE_ADDRESS);
  const reporter = new PredictionReporter(
    deps.reportSink ?? client,
    {
      role: config.ROLE as "PRIMARY" | "SHADOW",
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
  const ops: OpsServer = createOpsServer({ registry, ready: () => health.serving });
  let stopping: Promise<void> | undefined;

  return {
    server,
    health,
    registry,
    models,
    batcher,
    reporter,
    predict,

    /**
     * Listens on both ports; health answers NOT_SERVING until `load` has verified the model. A port that cannot be
     * listened on rejects with a ListenError whose message is one line naming the port and its setting.
     */
    async listen(): Promise<ListeningAddresses> {
      const host = config.HOST;
      const grpcPort = await listenOn({ setting: `${PREFIX}GRPC_PORT`, host, port: config.GRPC_PORT }, () =>
        bindGrpcServer(server, host, config.GRPC_PORT),
      );
      const metricsPort = (
        await listenOn({ setting: `${PREFIX}METRICS_PORT`, host, port: config.METRICS_PORT }, () =>
          ops.listen(config.METRICS_PORT, host),
        )
      ).port;
      logger.info({ grpcPort, metricsPort, role: config.ROLE }, "listening; loading the model");
      return { grpcPort, metricsPort };
    },

    /** Loads and verifies the model, then reports SERVING. Rejects with a ModelLoadError if it cannot serve it. */
    async load(): Promise<void> {
      await models.start();
      if (config.WATCH_MODEL) {
        models.watch();
      }
      reporter.start();
      health.set("SERVING");
      logger.info({ role: config.ROLE }, "serving");
    },

    /** `listen`, then `load`. */
    async start(): Promise<ListeningAddresses> {
      const addresses = await this.listen();
      await this.load();
      return addresses;
    },

    /** Loads the model directory again (SIGHUP); the old model keeps serving if the new one is broken. */
    reload: (reason: string) => models.reload(reason),

    /**
     * Graceful shutdown: NOT_SERVING, a pause for load balancers, stop accepting and finish in-flight calls,
     * flush the queued reports within a bound, then close everything.
     */
    stop(): Promise<void> {
      stopping ??= (async () => {
        health.set("NOT_SERVING");
        await sleep(config.SHUTDOWN_DELAY_MS);
        const drainMs = Math.max(
          100,
          config.SHUTDOWN_TIMEOUT_MS - config.SHUTDOWN_DELAY_MS - config.REPORT_FLUSH_TIMEOUT_MS - 500,
        );
        await stopGrpcServer(server, drainMs);
        shutdown.abort();
        await reporter.close(config.REPORT_FLUSH_TIMEOUT_MS);
        client?.close();
        await models.close();
        await ops.close();
      })();
      return stopping;
    },
  };
}

export type ModelService = ReturnType<typeof createModelService>;
