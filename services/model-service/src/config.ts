import { hostname } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  bool,
  ConfigError,
  describeConfig,
  loadConfig,
  logLevel,
  num,
  shutdownSpec,
  str,
} from "@shadowmesh/common";

/** Every setting of model-service: one env prefix, a default and one line of help each. */
export const PREFIX = "MODEL_SERVICE_";

/** The repository root (this file lives in services/model-service/{src,dist}/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export const spec = {
  ROLE: str({
    choices: ["PRIMARY", "SHADOW"],
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
  GRPC_PORT: num({
    default: 50051,
    desc: "gRPC (h2c) port serving PredictService, health and reflection (0: any free port).",
  }),
  METRICS_PORT: num({
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
  BATCH_MAX_SIZE: num({
    default: 64,
    desc: "Most texts in one inference run (dynamic batches and PredictBatch chunks).",
  }),
  BATCH_MAX_WAIT_US: num({
    default: 0,
    desc: "Longest a queued call waits for others to join its batch, in µs; 0 = only calls already received.",
  }),
  PREDICT_BATCH_MAX_TEXTS: num({
    default: 256,
    desc: "Most texts one PredictBatch call may carry (more is INVALID_ARGUMENT); split into BATCH_MAX_SIZE runs.",
  }),
  MAX_RECEIVE_BYTES: num({
    default: 4 * 1024 * 1024,
    desc: "Largest request message accepted; a bigger one is refused with RESOURCE_EXHAUSTED.",
  }),
  INTRA_OP_THREADS: num({ default: 1, desc: "ONNX Runtime intra-op threads per inference run." }),
  METRICS_SERVICE_ADDRESS: str({
    default: "127.0.0.1:50053",
    desc: "host:port of metrics-service, which receives a record of every prediction; empty disables reporting.",
  }),
  REPORT_RAW_TEXT: bool({
    default: false,
    desc: "Opt-in: include the raw input text in reports (otherwise only its sha256 and length).",
  }),
  REPORT_QUEUE_SIZE: num({
    default: 10_000,
    desc: "Most prediction records waiting to be reported; more are dropped and counted.",
  }),
  REPORT_BATCH_SIZE: num({ default: 500, desc: "Most records in one ReportPredictions call." }),
  REPORT_INTERVAL_MS: num({
    default: 200,
    desc: "How often queued records are sent (sooner when a batch is full).",
  }),
  REPORT_TIMEOUT_MS: num({ default: 2_000, desc: "Deadline of one ReportPredictions call." }),
  REPORT_SAMPLE_PERCENT: num({
    default: 100,
    desc: "Share of requests reported, chosen by a hash of the request id (the same on every side, so pairs stay whole); 0 to 100, equal on both model-services, app-service and metrics-service.",
  }),
  REPORT_FLUSH_TIMEOUT_MS: num({
    default: 2_000,
    desc: "On shutdown, longest time spent sending the records still queued.",
  }),
  ...shutdownSpec(),
};

export type Config = ReturnType<typeof readConfig>;

function requireInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `invalid configuration: ${PREFIX}${name} must be an integer from ${min} to ${max}, got ${value}`,
    );
  }
}

export function readConfig(env: NodeJS.ProcessEnv = process.env) {
  const raw = loadConfig(PREFIX, spec, env);
  requireInteger("GRPC_PORT", raw.GRPC_PORT, 0, 65535);
  requireInteger("METRICS_PORT", raw.METRICS_PORT, 0, 65535);
  requireInteger("BATCH_MAX_SIZE", raw.BATCH_MAX_SIZE, 1, 4096);
  requireInteger("BATCH_MAX_WAIT_US", raw.BATCH_MAX_WAIT_US, 0, 1_000_000);
  requireInteger("PREDICT_BATCH_MAX_TEXTS", raw.PREDICT_BATCH_MAX_TEXTS, 1, 100_000);
  requireInteger("MAX_RECEIVE_BYTES", raw.MAX_RECEIVE_BYTES, 1024, 1024 * 1024 * 1024);
  requireInteger("INTRA_OP_THREADS", raw.INTRA_OP_THREADS, 0, 256);
  requireInteger("REPORT_QUEUE_SIZE", raw.REPORT_QUEUE_SIZE, 1);
  requireInteger("REPORT_BATCH_SIZE", raw.REPORT_BATCH_SIZE, 1);
  requireInteger("REPORT_INTERVAL_MS", raw.REPORT_INTERVAL_MS, 1);
  requireInteger("REPORT_TIMEOUT_MS", raw.REPORT_TIMEOUT_MS, 1);
  requireInteger("REPORT_FLUSH_TIMEOUT_MS", raw.REPORT_FLUSH_TIMEOUT_MS, 0);
  requireInteger("SHUTDOWN_TIMEOUT_MS", raw.SHUTDOWN_TIMEOUT_MS, 1);
  requireInteger("SHUTDOWN_DELAY_MS", raw.SHUTDOWN_DELAY_MS, 0);
  const fail = (message: string): never => {
    throw new ConfigError(`invalid configuration: ${message}`);
  };
  if (raw.GRPC_PORT !== 0 && raw.GRPC_PORT === raw.METRICS_PORT) {
    fail(`${PREFIX}GRPC_PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  if (!raw.BATCHING && raw.BATCH_MAX_WAIT_US > 0) {
    fail(`${PREFIX}BATCH_MAX_WAIT_US=${raw.BATCH_MAX_WAIT_US} has no effect with ${PREFIX}BATCHING=false`);
  }
  if (!(raw.REPORT_SAMPLE_PERCENT >= 0 && raw.REPORT_SAMPLE_PERCENT <= 100)) {
    fail(`${PREFIX}REPORT_SAMPLE_PERCENT must be between 0 and 100 (got ${raw.REPORT_SAMPLE_PERCENT})`);
  }
  if (raw.REPORT_BATCH_SIZE > raw.REPORT_QUEUE_SIZE) {
    fail(`${PREFIX}REPORT_BATCH_SIZE must not exceed ${PREFIX}REPORT_QUEUE_SIZE`);
  }
  if (raw.SHUTDOWN_DELAY_MS + raw.REPORT_FLUSH_TIMEOUT_MS >= raw.SHUTDOWN_TIMEOUT_MS) {
    fail(
      `${PREFIX}SHUTDOWN_DELAY_MS + ${PREFIX}REPORT_FLUSH_TIMEOUT_MS must be less than ${PREFIX}SHUTDOWN_TIMEOUT_MS`,
    );
  }
  const address = raw.METRICS_SERVICE_ADDRESS.trim();
  if (address !== "" && !/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/.test(address)) {
    fail(`${PREFIX}METRICS_SERVICE_ADDRESS must be host:port or empty, got "${address}"`);
  }
  if (raw.MODEL_DIR.trim() === "") {
    fail(`${PREFIX}MODEL_DIR must not be empty`);
  }
  return {
    ...raw,
    MODEL_DIR: path.resolve(REPO_ROOT, raw.MODEL_DIR),
    INSTANCE: raw.INSTANCE || hostname(),
    METRICS_SERVICE_ADDRESS: address,
  };
}

export const help = () => describeConfig(PREFIX, spec);
