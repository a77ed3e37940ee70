import { createRegistry } from "@shadowmesh/common";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { BatchObserver } from "./batcher.js";
import type { LoadedModelInfo } from "./model.js";
import type { ReloadResult } from "./model-manager.js";
import type { ReporterObserver } from "./reporter.js";

/**
 * model-service's own Prometheus metrics (beside the process defaults and grpc_server_*). The `role` label (from
 * configuration) is a default label of the whole registry (see `createModelRegistry`), so every series, the
 * grpc_server_* ones included, tells the primary and the shadow apart when both are scraped.
 * Label children are bound once and cached: prom-client hashes label sets on every call otherwise.
 */
export interface ModelMetrics extends BatchObserver, ReporterObserver {
  prediction(model: LoadedModelInfo, label: string, probability: number): void;
  loaded(model: LoadedModelInfo, previous: LoadedModelInfo | undefined): void;
  reloaded(result: ReloadResult): void;
}

/** A registry with the process defaults and the default labels `service` and `role`. */
export function createModelRegistry(role: string): Registry {
  const registry = createRegistry("model-service");
  registry.setDefaultLabels({ service: "model-service", role });
  return registry;
}

export function createModelMetrics(registry: Registry): ModelMetrics {
  const predictions = new Counter({
    name: "model_service_predictions_total",
    help: "Predictions served, by model, version, role and predicted label.",
    labelNames: ["model", "version", "label"] as const,
    registers: [registry],
  });
  const scores = new Histogram({
    name: "model_service_prediction_score",
    help: "Probability of the predicted label, by model, version, role and predicted label.",
    labelNames: ["model", "version", "label"] as const,
    buckets: [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1],
    registers: [registry],
  });
  const inference = new Histogram({
    name: "model_service_inference_seconds",
    help: "Time of one ONNX Runtime inference run (one batch), by model, version and role.",
    labelNames: ["model", "version"] as const,
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: "model_service_batch_size",
    help: "Texts per inference run, by model, version and role.",
    labelNames: ["model", "version"] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const wait = new Histogram({
    name: "model_service_wait_seconds",
    help: "Time from the receipt of a call's request headers to the start of its inference run (message upload, event loop, batcher queue), by role.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const info = new Gauge({
    name: "model_service_model_info",
    help: "The model being served (value 1), labelled with its name, version, role and sha256.",
    labelNames: ["name", "version", "sha256"] as const,
    registers: [registry],
  });
  const loadSeconds = new Gauge({
    name: "model_service_model_load_seconds",
    help: "Time the serving model took to load and verify.",
    registers: [registry],
  });
  const reloads = new Counter({
    name: "model_service_model_reloads_total",
    help: "Model reload attempts by result (loaded, unchanged, failed: the old model kept serving).",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: "model_service_report_queue_depth",
    help: "Prediction records waiting to be reported to metrics-service.",
    registers: [registry],
  });
  const dropped = new Counter({
    name: "model_service_report_dropped_total",
    help: "Prediction records dropped instead of reported, by reason (queue_full, send_failed, shutdown).",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const sent = new Counter({
    name: "model_service_report_sent_total",
    help: "Prediction records reported to metrics-service.",
    registers: [registry],
  });
  for (const result of ["loaded", "unchanged", "failed"] as const) {
    reloads.inc({ result }, 0);
  }
  for (const reason of ["queue_full", "send_failed", "shutdown"] as const) {
    dropped.inc({ reason }, 0);
  }
  sent.inc(0);
  queueDepth.set(0);

  type Bound = {
    predictions: Map<string, ReturnType<typeof predictions.labels>>;
    scores: Map<string, ReturnType<typeof scores.labels>>;
    inference: ReturnType<typeof inference.labels>;
    batchSize: ReturnType<typeof batchSize.labels>;
  };
  const bound = new WeakMap<LoadedModelInfo, Bound>();
  const boundFor = (model: LoadedModelInfo): Bound => {
    let entry = bound.get(model);
    if (!entry) {
      const labels = { model: model.name, version: model.version };
      entry = {
        predictions: new Map(),
        scores: new Map(),
        inference: inference.labels(labels),
        batchSize: batchSize.labels(labels),
      };
      bound.set(model, entry);
    }
    return entry;
  };

  return {
    prediction(model, label, probability) {
      const entry = boundFor(model);
      let counter = entry.predictions.get(label);
      let histogram = entry.scores.get(label);
      if (!counter || !histogram) {
        const labels = { model: model.name, version: model.version, label };
        counter = predictions.labels(labels);
        histogram = scores.labels(labels);
        entry.predictions.set(label, counter);
        entry.scores.set(label, histogram);
      }
      counter.inc();
      histogram.observe(probability);
    },
    ran(model, size, seconds) {
      const entry = boundFor(model);
      entry.inference.observe(seconds);
      entry.batchSize.observe(size);
    },
    waited(seconds) {
      wait.observe(seconds);
    },
    loaded(model, previous) {
      if (previous) {
        info.remove({ name: previous.name, version: previous.version, sha256: previous.sha256 });
      }
      info.set({ name: model.name, version: model.version, sha256: model.sha256 }, 1);
      loadSeconds.set(model.loadMs / 1000);
    },
    reloaded(result) {
      reloads.inc({ result });
    },
    queueDepth(depth) {
      queueDepth.set(depth);
    },
    dropped(reason, count) {
      dropped.inc({ reason }, count);
    },
    sent(count) {
      sent.inc(count);
    },
  };
}
