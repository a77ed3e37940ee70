import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  bool,
  ConfigError,
  describeConfig,
  feedbackSecretProblem,
  loadConfig,
  logLevel,
  num,
  shutdownSpec,
  str,
} from "@shadowmesh/common";
import { parseMirrorPercents } from "./candidates.js";

/** Every setting of metrics-service: one env prefix, a default and one line of help each. */
export const PREFIX = "METRICS_SERVICE_";

/** The repository root (this file is `services/metrics-service/{src,dist}/config.*`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

const HOUR_MS = 3_600_000;

/** The hard cap on disagreements in one report, whatever a client asks for. */
export const MAX_DISAGREEMENTS_LIMIT = 500;

export const spec = {
  HOST: str({
    default: "127.0.0.1",
    desc: "Address the gRPC and metrics ports bind to (0.0.0.0 in a container).",
  }),
  GRPC_PORT: num({
    default: 50053,
    desc: "gRPC (h2c) port serving MetricsService, health and reflection; 0 picks a free one (logged).",
  }),
  METRICS_PORT: num({
    default: 9103,
    desc: "HTTP port serving /metrics, /healthz and /readyz; 0 picks a free one (logged).",
  }),
  LOG_LEVEL: logLevel(),
  DATA_DIR: str({
    default: ".data/metrics",
    desc: "Directory of the SQLite store (shadow.db); a relative path is resolved against the repository root.",
  }),
  SQLITE_SYNCHRONOUS: str({
    choices: ["FULL", "NORMAL"],
    default: "FULL",
    desc: "SQLite synchronous mode (WAL): FULL also survives power loss; both survive a killed process.",
  }),
  RETENTION_HOURS: num({ default: 168, desc: "Records and feedback older than this are deleted." }),
  RETENTION_INTERVAL_MS: num({ default: 60_000, desc: "How often the retention sweep runs." }),
  JOIN_WINDOW_MS: num({
    default: 60_000,
    desc: "Largest time between a primary and a shadow prediction that still pair; older lone records are unmatched.",
  }),
  REPORT_WINDOW_MS: num({
    default: HOUR_MS,
    desc: "Report window when a request leaves it unset; also the window of the Prometheus gauges.",
  }),
  MAX_DISAGREEMENTS: num({
    default: 20,
    desc: "Recent disagreements in a report when a request asks for 0.",
  }),
  WATCH_INTERVAL_MS: num({
    default: 1000,
    desc: "Shortest time between two WatchShadowReport updates when unset.",
  }),
  WATCH_MIN_INTERVAL_MS: num({ default: 250, desc: "Floor for a client's WatchShadowReport min_interval." }),
  WATCH_REFRESH_MS: num({
    default: 5000,
    desc: "Without new data, how often a watch re-checks the report (pending pairs age, the window slides).",
  }),
  STORE_RAW_TEXT: bool({
    default: false,
    desc: "Opt-in: keep the raw input text model-services send and show it in disagreements (off: dropped).",
  }),
  MAX_RECORDS_PER_BATCH: num({
    default: 10_000,
    desc: "Largest ReportPredictions batch; larger ones are refused.",
  }),
  VERDICT_MIN_PAIRS: num({
    default: 100,
    desc: "Pairs needed before any verdict other than INSUFFICIENT_DATA.",
  }),
  VERDICT_MIN_AGREEMENT: num({
    default: 0.9,
    desc: "PROMOTE needs the 95 % Wilson lower bound of agreement at least this (else HOLD).",
  }),
  VERDICT_MAX_ERROR_RATE_INCREASE: num({
    default: 0.01,
    desc: "ROLLBACK when the shadow's error rate exceeds the primary's by more than this.",
  }),
  VERDICT_MAX_LATENCY_P99_RATIO: num({
    default: 1.5,
    desc: "HOLD when the shadow's p99 latency exceeds this multiple of the primary's (and the slack below).",
  }),
  VERDICT_LATENCY_SLACK_MS: num({
    default: 2,
    desc: "Latency differences up to this many ms never fail the p99 check (sub-ms noise).",
  }),
  VERDICT_MIN_FEEDBACK: num({
    default: 30,
    desc: "Feedback-labelled predictions each role needs before accuracy is compared.",
  }),
  VERDICT_MAX_ACCURACY_DROP: num({
    default: 0.02,
    desc: "ROLLBACK when the shadow's feedback accuracy is below the primary's by more than this.",
  }),
  EXPECTED_MIRROR_PERCENT: num({
    default: 100,
    desc: "Share of primary requests mirrored to the shadow (the mesh's mirror percentage), 0 to 100; coverage is measured against it.",
  }),
  // Issue 15 (several candidates): per-candidate expected mirror shares; parsed by parseMirrorPercents.
  EXPECTED_MIRROR_PERCENTS: str({
    default: "",
    desc: "Share of primary requests mirrored to each named candidate, as name=percent pairs separated by commas (spam-v2=100,spam-lite=50); candidates not listed expect EXPECTED_MIRROR_PERCENT.",
  }),
  REPORT_SAMPLE_PERCENT: num({
    default: 100,
    desc: "The model-services' and app-service's REPORT_SAMPLE_PERCENT (consistent report sampling), 0 to 100: the shadow-silence allowance is divided by it.",
  }),
  VERDICT_MIN_COVERAGE: num({
    default: 0.9,
    desc: "PROMOTE needs the shadow's records for at least this share of the expected mirrored primary records (else HOLD).",
  }),
  VERDICT_MAX_SHADOW_SILENCE_MS: num({
    default: 30_000,
    desc: "HOLD when primary records keep arriving this long after the shadow's last record (divided by the mirror share).",
  }),
  FEEDBACK_SECRET: str({
    default: "",
    desc: "Secret verifying feedback tokens (same value as APP_SERVICE_FEEDBACK_SECRET), at least 32 characters; empty disables feedback.",
  }),
  ...shutdownSpec(),
};

export type Config = ReturnType<typeof readConfig>;

function fail(message: string): never {
  throw new ConfigError(`invalid configuration: ${message}`);
}

function requirePositive(config: Record<string, unknown>, keys: readonly string[]) {
  for (const key of keys) {
    const value = config[key];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      fail(`${PREFIX}${key} must be a positive number (got ${String(value)})`);
    }
  }
}

function requireRatio(config: Record<string, unknown>, keys: readonly string[]) {
  for (const key of keys) {
    const value = config[key];
    if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
      fail(`${PREFIX}${key} must be between 0 and 1 (got ${String(value)})`);
    }
  }
}

export function readConfig(env: NodeJS.ProcessEnv = process.env) {
  const loaded = loadConfig(PREFIX, spec, env);
  const config = { ...loaded, DATA_DIR: path.resolve(REPO_ROOT, loaded.DATA_DIR) };
  for (const key of ["GRPC_PORT", "METRICS_PORT"] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 0 || config[key] > 65_535) {
      fail(`${PREFIX}${key} must be a port number from 0 to 65535 (got ${config[key]})`);
    }
  }
  if (config.GRPC_PORT !== 0 && config.GRPC_PORT === config.METRICS_PORT) {
    fail(`${PREFIX}GRPC_PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  requirePositive(config, [
    "RETENTION_HOURS",
    "RETENTION_INTERVAL_MS",
    "JOIN_WINDOW_MS",
    "REPORT_WINDOW_MS",
    "WATCH_INTERVAL_MS",
    "WATCH_MIN_INTERVAL_MS",
    "WATCH_REFRESH_MS",
    "MAX_RECORDS_PER_BATCH",
    "VERDICT_MIN_PAIRS",
    "VERDICT_MIN_FEEDBACK",
    "VERDICT_MAX_LATENCY_P99_RATIO",
    "VERDICT_MAX_SHADOW_SILENCE_MS",
  ]);
  requireRatio(config, [
    "VERDICT_MIN_AGREEMENT",
    "VERDICT_MAX_ERROR_RATE_INCREASE",
    "VERDICT_MAX_ACCURACY_DROP",
    "VERDICT_MIN_COVERAGE",
  ]);
  if (!(config.EXPECTED_MIRROR_PERCENT >= 0 && config.EXPECTED_MIRROR_PERCENT <= 100)) {
    fail(
      `${PREFIX}EXPECTED_MIRROR_PERCENT must be between 0 and 100 (got ${config.EXPECTED_MIRROR_PERCENT})`,
    );
  }
  try {
    parseMirrorPercents(config.EXPECTED_MIRROR_PERCENTS);
  } catch (error) {
    fail(`${PREFIX}EXPECTED_MIRROR_PERCENTS: ${(error as Error).message}`);
  }
  if (!(config.REPORT_SAMPLE_PERCENT > 0 && config.REPORT_SAMPLE_PERCENT <= 100)) {
    fail(
      `${PREFIX}REPORT_SAMPLE_PERCENT must be above 0 and at most 100 (got ${config.REPORT_SAMPLE_PERCENT})`,
    );
  }
  const secretProblem = feedbackSecretProblem(config.FEEDBACK_SECRET);
  if (secretProblem) {
    fail(`${PREFIX}FEEDBACK_SECRET ${secretProblem}`);
  }
  if (!(config.VERDICT_LATENCY_SLACK_MS >= 0)) {
    fail(`${PREFIX}VERDICT_LATENCY_SLACK_MS must not be negative`);
  }
  if (!(config.MAX_DISAGREEMENTS >= 0 && config.MAX_DISAGREEMENTS <= MAX_DISAGREEMENTS_LIMIT)) {
    fail(`${PREFIX}MAX_DISAGREEMENTS must be between 0 and ${MAX_DISAGREEMENTS_LIMIT}`);
  }
  const retentionMs = config.RETENTION_HOURS * 3_600_000;
  if (config.JOIN_WINDOW_MS >= retentionMs) {
    fail(
      `${PREFIX}JOIN_WINDOW_MS must be shorter than ${PREFIX}RETENTION_HOURS (records would be deleted unjoined)`,
    );
  }
  if (config.REPORT_WINDOW_MS > retentionMs) {
    fail(
      `${PREFIX}REPORT_WINDOW_MS must not exceed ${PREFIX}RETENTION_HOURS (the window would be cut short)`,
    );
  }
  if (config.WATCH_MIN_INTERVAL_MS > config.WATCH_INTERVAL_MS) {
    fail(`${PREFIX}WATCH_MIN_INTERVAL_MS must not exceed ${PREFIX}WATCH_INTERVAL_MS`);
  }
  // The secret stays readable but is not enumerable, so that logging the configuration (main.ts does at start)
  // never prints it.
  Object.defineProperty(config, "FEEDBACK_SECRET", { enumerable: false });
  return config;
}

export const help = () => describeConfig(PREFIX, spec);
