import { hostname } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  bool,
  describeConfig,
  hostPort,
  int,
  invalidConfig,
  loadConfig,
  logLevel,
  ms,
  oneOf,
  percent,
  port,
  shutdownSpec,
  str,
} from "@shadowmesh/common";

/** Every setting of model-service: one env prefix, a default and one line of help each. */
export const PREFIX = "MODEL_SERVICE_";

/** The repository root (this file lives in services/model-service/{src,dist}/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export const spec = {
  ROLE: oneOf(["PRIMARY", "SHADOW"], {
    default: "PRIMARY",
    desc: "Which side of the shadow test this instance is; it is reported with every prediction and labels metrics.",
  }),
  MODEL_DIR: str({
    default: "models/spam-v1",
    desc: "Directory holding model.onnx and model.json; a relative path is resolved against the repository root.",
  }),
  WATCH_MODEL: bool({
    default: true,
    desc: "Reload the model when files in MODEL_DIR change (SIGHUP always reloads).",
  }),
  HOST: str({
    default: "127.0.0.1",
    desc: "Address the gRPC and metrics ports bind to (0.0.0.0 in a container).",
  }),
  GRPC_PORT: port({
    default: 50051,
    desc: "gRPC (h2c) port serving PredictService, health and reflection (0: any free port).",
  }),
  METRICS_PORT: port({
    default: 9101,
    desc: "HTTP port serving /metrics, /healthz and /readyz (0: any free port).",
  }),
  INSTANCE: str({
    default: "",
    desc: "Instance name reported with every prediction; empty means the host name.",
  }),
  LOG_LEVEL: logLevel(),
  BATCHING: bool({
    default: true,
    desc: "Coalesce concurrent Predict calls into one inference run; false runs every call as a batch of one.",
  }),
  BATCH_MAX_SIZE: int({
    min: 1,
    max: 4096,
    default: 64,
    desc: "Most texts in one inference run (dynamic batches and PredictBatch chunks).",
  }),
  BATCH_MAX_WAIT_US: int({
    min: 0,
    max: 1_000_000,
    default: 0,
    desc: "Longest a queued call waits for others to join its batch, in µs; 0 = only calls already received.",
  }),
  PREDICT_BATCH_MAX_TEXTS: int({
    min: 1,
    max: 100_000,
    default: 256,
    desc: "Most texts one PredictBatch call may carry (more is INVALID_ARGUMENT); split into BATCH_MAX_SIZE runs.",
  }),
  MAX_RECEIVE_BYTES: int({
    min: 1024,
    max: 1024 * 1024 * 1024,
    default: 4 * 1024 * 1024,
    desc: "Largest request message accepted; a bigger one is refused with RESOURCE_EXHAUSTED.",
  }),
  INTRA_OP_THREADS: int({
    min: 0,
    max: 256,
    default: 1,
    desc: "ONNX Runtime intra-op threads per inference run.",
  }),
  METRICS_SERVICE_ADDRESS: hostPort({
    optional: true,
    default: "127.0.0.1:50053",
    desc: "host:port of metrics-service, which receives a record of every prediction; empty disables reporting.",
  }),
  REPORT_RAW_TEXT: bool({
    default: false,
    desc: "Opt-in: include the raw input text in reports (otherwise only its sha256 and length).",
  }),
  REPORT_QUEUE_SIZE: int({
    min: 1,
    default: 10_000,
    desc: "Most prediction records waiting to be reported; more are dropped and counted.",
  }),
  REPORT_BATCH_SIZE: int({ min: 1, default: 500, desc: "Most records in one ReportPredictions call." }),
  REPORT_INTERVAL_MS: ms({
    min: 1,
    default: 200,
    desc: "How often queued records are sent (sooner when a batch is full).",
  }),
  REPORT_TIMEOUT_MS: ms({ min: 1, default: 2_000, desc: "Deadline of one ReportPredictions call." }),
  REPORT_SAMPLE_PERCENT: percent({
    default: 100,
    desc: "Share of requests reported, chosen by a hash of the request id (the same on every side, so pairs stay whole); 0 to 100, equal on both model-services, app-service and metrics-service.",
  }),
  REPORT_FLUSH_TIMEOUT_MS: ms({
    default: 2_000,
    desc: "On shutdown, longest time spent sending the records still queued.",
  }),
  ...shutdownSpec(),
};

export type Config = ReturnType<typeof readConfig>;

export function readConfig(env: NodeJS.ProcessEnv = process.env) {
  const raw = loadConfig(PREFIX, spec, env);
  // Each setting's own rule is in its validator (spec); what is left are rules between settings.
  if (raw.GRPC_PORT !== 0 && raw.GRPC_PORT === raw.METRICS_PORT) {
    invalidConfig(`${PREFIX}GRPC_PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  if (!raw.BATCHING && raw.BATCH_MAX_WAIT_US > 0) {
    invalidConfig(
      `${PREFIX}BATCH_MAX_WAIT_US=${raw.BATCH_MAX_WAIT_US} has no effect with ${PREFIX}BATCHING=false`,
    );
  }
  if (raw.REPORT_BATCH_SIZE > raw.REPORT_QUEUE_SIZE) {
    invalidConfig(`${PREFIX}REPORT_BATCH_SIZE must not exceed ${PREFIX}REPORT_QUEUE_SIZE`);
  }
  if (raw.SHUTDOWN_DELAY_MS + raw.REPORT_FLUSH_TIMEOUT_MS >= raw.SHUTDOWN_TIMEOUT_MS) {
    invalidConfig(
      `${PREFIX}SHUTDOWN_DELAY_MS + ${PREFIX}REPORT_FLUSH_TIMEOUT_MS must be less than ${PREFIX}SHUTDOWN_TIMEOUT_MS`,
    );
  }
  if (raw.MODEL_DIR.trim() === "") {
    invalidConfig(`${PREFIX}MODEL_DIR must not be empty`);
  }
  return {
    ...raw,
    MODEL_DIR: path.resolve(REPO_ROOT, raw.MODEL_DIR),
    INSTANCE: raw.INSTANCE || hostname(),
  };
}

export const help = () => describeConfig(PREFIX, spec);
