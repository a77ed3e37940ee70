import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  bool,
  describeConfig,
  feedbackSecretProblem,
  int,
  invalidConfig,
  loadConfig,
  logLevel,
  ms,
  num,
  oneOf,
  percent,
  port,
  ratio,
  shutdownSpec,
  str,
} from "@shadowmesh/common";
import { parseMirrorPercents } from "./candidates.js";

/** Every setting of metrics-service: one env prefix, a default and one line of help each. */
export const PREFIX = "METRICS_SERVICE_";

/** The repository root (this file is `services/metrics-service/{src,dist}/config.*`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

const HOUR_MS = 3_600_000;

/** How many candidates metrics-service tracks when METRICS_SERVICE_MAX_CANDIDATES is unset. */
export const DEFAULT_MAX_CANDIDATES = 16;

/** The hard cap on disagreements in one report, whatever a client asks for. */
export const MAX_DISAGREEMENTS_LIMIT = 500;

export const spec = {
  HOST: str({
    default: "127.0.0.1",
    desc: "Address the gRPC and metrics ports bind to (0.0.0.0 in a container).",
  }),
  GRPC_PORT: port({
    default: 50053,
    desc: "gRPC (h2c) port serving MetricsService, health and reflection; 0 picks a free one (logged).",
  }),
  METRICS_PORT: port({
    default: 9103,
    desc: "HTTP port serving /metrics, /healthz and /readyz; 0 picks a free one (logged).",
  }),
  LOG_LEVEL: logLevel(),
  DATA_DIR: str({
    default: ".data/metrics",
    desc: "Directory of the SQLite store (shadow.db); a relative path is resolved against the repository root.",
  }),
  SQLITE_SYNCHRONOUS: oneOf(["FULL", "NORMAL"], {
    default: "FULL",
    desc: "SQLite synchronous mode (WAL): FULL also survives power loss; both survive a killed process.",
  }),
  RETENTION_HOURS: num({ above: 0, default: 168, desc: "Records and feedback older than this are deleted." }),
  RETENTION_INTERVAL_MS: ms({ min: 1, default: 60_000, desc: "How often the retention sweep runs." }),
  JOIN_WINDOW_MS: ms({
    min: 1,
    default: 60_000,
    desc: "Largest time between a primary and a shadow prediction that still pair; older lone records are unmatched.",
  }),
  REPORT_WINDOW_MS: ms({
    min: 1,
    default: HOUR_MS,
    desc: "Report window when a request leaves it unset; also the window of the Prometheus gauges.",
  }),
  MAX_DISAGREEMENTS: int({
    min: 0,
    max: MAX_DISAGREEMENTS_LIMIT,
    default: 20,
    desc: "Recent disagreements in a report when a request asks for 0.",
  }),
  WATCH_INTERVAL_MS: ms({
    min: 1,
    default: 1000,
    desc: "Shortest time between two WatchShadowReport updates when unset.",
  }),
  WATCH_MIN_INTERVAL_MS: ms({
    min: 1,
    default: 250,
    desc: "Floor for a client's WatchShadowReport min_interval.",
  }),
  WATCH_REFRESH_MS: ms({
    min: 1,
    default: 5000,
    desc: "Without new data, how often a watch re-checks the report (pending pairs age, the window slides).",
  }),
  STORE_RAW_TEXT: bool({
    default: false,
    desc: "Opt-in: keep the raw input text model-services send and show it in disagreements (off: dropped).",
  }),
  MAX_RECORDS_PER_BATCH: int({
    min: 1,
    default: 10_000,
    desc: "Largest ReportPredictions batch; larger ones are refused.",
  }),
  VERDICT_MIN_PAIRS: int({
    min: 1,
    default: 100,
    desc: "Pairs needed before any verdict other than INSUFFICIENT_DATA.",
  }),
  VERDICT_MIN_AGREEMENT: ratio({
    default: 0.9,
    desc: "PROMOTE needs the 95 % Wilson lower bound of agreement at least this (else HOLD).",
  }),
  VERDICT_MAX_ERROR_RATE_INCREASE: ratio({
    default: 0.01,
    desc: "ROLLBACK when the shadow's error rate exceeds the primary's by more than this.",
  }),
  VERDICT_MAX_LATENCY_P99_RATIO: num({
    above: 0,
    default: 1.5,
    desc: "HOLD when the shadow's p99 latency exceeds this multiple of the primary's (and the slack below).",
  }),
  VERDICT_LATENCY_SLACK_MS: num({
    min: 0,
    default: 2,
    desc: "Latency differences up to this many ms never fail the p99 check (sub-ms noise).",
  }),
  VERDICT_MIN_FEEDBACK: int({
    min: 1,
    default: 30,
    desc: "Feedback-labelled predictions each role needs before accuracy is compared.",
  }),
  VERDICT_MAX_ACCURACY_DROP: ratio({
    default: 0.02,
    desc: "ROLLBACK when the shadow's feedback accuracy is below the primary's by more than this.",
  }),
  EXPECTED_MIRROR_PERCENT: percent({
    default: 100,
    desc: "Share of primary requests mirrored to the shadow (the mesh's mirror percentage), 0 to 100; coverage is measured against it.",
  }),
  // Several candidates: per-candidate expected mirror shares; parsed by parseMirrorPercents (candidates.ts).
  EXPECTED_MIRROR_PERCENTS: str({
    default: "",
    desc: "Share of primary requests mirrored to each named candidate, as name=percent pairs separated by commas (spam-v2=100,spam-lite=50); candidates not listed expect EXPECTED_MIRROR_PERCENT.",
  }),
  MAX_CANDIDATES: int({
    min: 1,
    default: DEFAULT_MAX_CANDIDATES,
    desc: "Most candidates (shadow model names) stored at once: SHADOW records of a new one beyond it are refused (counted, logged); a candidate leaves when retention deletes its last record.",
  }),
  REPORT_SAMPLE_PERCENT: percent({
    above0: true,
    default: 100,
    desc: "The model-services' and app-service's REPORT_SAMPLE_PERCENT (consistent report sampling), 0 to 100: the shadow-silence allowance is divided by it.",
  }),
  VERDICT_MIN_COVERAGE: ratio({
    default: 0.9,
    desc: "PROMOTE needs the shadow's records for at least this share of the expected mirrored primary records (else HOLD).",
  }),
  VERDICT_MAX_SHADOW_SILENCE_MS: ms({
    min: 1,
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

export function readConfig(env: NodeJS.ProcessEnv = process.env) {
  const loaded = loadConfig(PREFIX, spec, env);
  const config = { ...loaded, DATA_DIR: path.resolve(REPO_ROOT, loaded.DATA_DIR) };
  // Each setting's own rule is in its validator (spec); what is left are rules between settings.
  if (config.GRPC_PORT !== 0 && config.GRPC_PORT === config.METRICS_PORT) {
    invalidConfig(`${PREFIX}GRPC_PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  try {
    parseMirrorPercents(config.EXPECTED_MIRROR_PERCENTS);
  } catch (error) {
    invalidConfig(`${PREFIX}EXPECTED_MIRROR_PERCENTS: ${(error as Error).message}`);
  }
  const secretProblem = feedbackSecretProblem(config.FEEDBACK_SECRET);
  if (secretProblem) {
    invalidConfig(`${PREFIX}FEEDBACK_SECRET ${secretProblem}`);
  }
  const retentionMs = config.RETENTION_HOURS * 3_600_000;
  if (config.JOIN_WINDOW_MS >= retentionMs) {
    invalidConfig(
      `${PREFIX}JOIN_WINDOW_MS must be shorter than ${PREFIX}RETENTION_HOURS (records would be deleted unjoined)`,
    );
  }
  if (config.REPORT_WINDOW_MS > retentionMs) {
    invalidConfig(
      `${PREFIX}REPORT_WINDOW_MS must not exceed ${PREFIX}RETENTION_HOURS (the window would be cut short)`,
    );
  }
  if (config.WATCH_MIN_INTERVAL_MS > config.WATCH_INTERVAL_MS) {
    invalidConfig(`${PREFIX}WATCH_MIN_INTERVAL_MS must not exceed ${PREFIX}WATCH_INTERVAL_MS`);
  }
  // The secret stays readable but is not enumerable, so that logging the configuration (main.ts does at start)
  // never prints it.
  Object.defineProperty(config, "FEEDBACK_SECRET", { enumerable: false });
  return config;
}

export const help = () => describeConfig(PREFIX, spec);
