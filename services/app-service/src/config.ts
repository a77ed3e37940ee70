import { hostname } from "node:os";
import {
  bool,
  describeConfig,
  feedbackSecretProblem,
  hostPort,
  int,
  invalidConfig,
  loadConfig,
  logLevel,
  ms,
  percent,
  port,
  shutdownSpec,
  str,
} from "@shadowmesh/common";
import { faultSpec, readFaults, type ShadowFaults } from "./fault.js";
import { readShadows, type ShadowTarget } from "./shadows.js";

/** Every setting of app-service: one env prefix, a default and one line of help each. */
export const PREFIX = "APP_SERVICE_";

export const spec = {
  HOST: str({
    default: "127.0.0.1",
    desc: "Address the HTTP and metrics ports bind to (0.0.0.0 in a container).",
  }),
  PORT: port({ default: 8080, desc: "HTTP/1.1 port serving Connect, gRPC-web and the web app." }),
  METRICS_PORT: port({ default: 9100, desc: "HTTP port serving /metrics, /healthz and /readyz." }),
  MODEL_SERVICE_ADDRESS: hostPort({
    default: "127.0.0.1:50051",
    desc: "host:port of the primary model-service (gRPC).",
  }),
  SHADOW_ADDRESS: hostPort({
    optional: true,
    default: "",
    desc: "host:port of the shadow model-service to mirror to; empty = no local mirroring (cluster mode: Istio mirrors).",
  }),
  MIRROR_PERCENT: percent({
    default: 100,
    desc: "Percentage (0-100) of Predict/PredictBatch calls mirrored to the shadow (with SHADOWS: to each shadow that names no percent of its own).",
  }),
  MAX_MIRRORS_IN_FLIGHT: int({
    min: 0,
    default: 64,
    desc: "Most calls in flight to the shadow at once; beyond it mirrors are dropped and counted (with SHADOWS: the bound of each shadow that names no inflight of its own).",
  }),
  // Several candidates (#15): a list of shadows, each with its own share and bound (shadows.ts).
  SHADOWS: str({
    default: "",
    desc: "Shadows (candidates) to mirror to, instead of SHADOW_ADDRESS: comma-separated NAME=HOST:PORT[;percent=P][;inflight=N], NAME the candidate's model name (e.g. spam-v2=127.0.0.1:50052,spam-lite=127.0.0.1:50054;percent=50); percent and inflight default to MIRROR_PERCENT and MAX_MIRRORS_IN_FLIGHT.",
  }),
  SHADOW_NAME: str({
    default: "",
    desc: "Model name of the shadow at SHADOW_ADDRESS (its records and the shadow label of the mirror metrics); empty = learnt from its answers, and the metrics are labelled with its address.",
  }),
  METRICS_SERVICE_ADDRESS: hostPort({
    default: "127.0.0.1:50053",
    desc: "host:port of metrics-service (gRPC).",
  }),
  REPORT_SAMPLE_PERCENT: percent({
    default: 100,
    desc: "Share of requests whose failed mirrored calls are reported (MIRROR records), by the same request-id hash as the model-services; set it equal to theirs.",
  }),
  WEB_DIR: str({
    default: "",
    desc: "Directory of the built web app (web/dist) to serve at /; empty = don't serve it.",
  }),
  DEADLINE_MS: ms({
    min: 1,
    default: 2000,
    desc: "Deadline of each call to model-service and of unary calls to metrics-service (a shorter client timeout wins).",
  }),
  RETRY_JITTER_MS: ms({
    default: 50,
    desc: "Upstream calls that fail with UNAVAILABLE are retried once, if their method's declared idempotency_level allows it, after a random pause of up to this many ms.",
  }),
  MAX_BODY_BYTES: int({
    min: 1,
    default: 256 * 1024,
    desc: "Largest request message accepted; bigger ones are refused with RESOURCE_EXHAUSTED.",
  }),
  HTTP_REQUEST_TIMEOUT_MS: ms({
    min: 1,
    default: 30_000,
    desc: "Longest time a client may take to send a whole HTTP request (guards against slow clients).",
  }),
  CORS_ORIGINS: str({
    default: "",
    desc: "Comma-separated origins allowed to call the API cross-origin (e.g. http://localhost:5173); empty = same-origin only.",
  }),
  PUBLIC_HOSTS: str({
    default: "",
    desc: "Comma-separated host[:port] names the API and web app answer to (the Host header); a name without a port matches any port; empty = localhost, 127.0.0.1 and [::1] on the listening port. Other Host headers get 421 (DNS rebinding).",
  }),
  TRUST_FORWARDED_PROTO: bool({
    default: false,
    desc: "Behind a TLS-terminating proxy that sets X-Forwarded-Proto: take the request's scheme from it for the same-origin check (only if every request comes through that proxy).",
  }),
  FEEDBACK_SECRET: str({
    default: "",
    desc: "Secret (at least 32 characters; the same as METRICS_SERVICE_FEEDBACK_SECRET) for the feedback token on every prediction; empty = no tokens (metrics-service then refuses feedback).",
  }),
  INSTANCE: str({
    default: "",
    desc: "Instance name on the records of failed mirrored calls; empty means the host name.",
  }),
  READY_CHECK_INTERVAL_MS: ms({
    min: 1,
    default: 1000,
    desc: "How often the primary model-service's gRPC health is checked for /readyz.",
  }),
  ...faultSpec,
  LOG_LEVEL: logLevel(),
  ...shutdownSpec(),
};

type Loaded = ReturnType<typeof loadConfig<typeof spec>>;

/** The settings, with CORS_ORIGINS and PUBLIC_HOSTS parsed into lists. */
export type Config = Omit<Loaded, "CORS_ORIGINS" | "PUBLIC_HOSTS" | "SHADOWS"> & {
  readonly CORS_ORIGINS: readonly string[];
  /** Lower-case `host` or `host:port` entries; empty = the loopback names on the listening port. */
  readonly PUBLIC_HOSTS: readonly string[];
  /** The SHADOW_FAULT_* settings, checked (fault.ts). */
  readonly SHADOW_FAULTS: ShadowFaults;
  /** The shadows to mirror to: SHADOWS, or the one at SHADOW_ADDRESS; empty = no local mirroring (shadows.ts). */
  readonly SHADOWS: readonly ShadowTarget[];
};

function parseOrigins(value: string): string[] {
  const origins = value
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);
  for (const origin of origins) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      invalidConfig(`${PREFIX}CORS_ORIGINS: "${origin}" is not an origin like https://example.com`);
    }
    if (url.origin !== origin.replace(/\/$/, "")) {
      invalidConfig(`${PREFIX}CORS_ORIGINS: "${origin}" must be scheme://host[:port] without a path`);
    }
  }
  return origins.map((origin) => origin.replace(/\/$/, ""));
}

/** host or host:port, where host is a DNS name, an IPv4 address or a bracketed IPv6 address. */
const PUBLIC_HOST =
  /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:\d{1,5})?$/;

function parsePublicHosts(value: string): string[] {
  const hosts = value
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry.length > 0);
  for (const entry of hosts) {
    if (!PUBLIC_HOST.test(entry)) {
      invalidConfig(
        `${PREFIX}PUBLIC_HOSTS: "${entry}" is not host[:port] (a name like app.example.com or app-service:8080, no scheme or path)`,
      );
    }
  }
  return hosts;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = loadConfig(PREFIX, spec, env);
  // Each setting's own rule is in its validator (spec); what is left are rules between settings.
  if (config.PORT !== 0 && config.PORT === config.METRICS_PORT) {
    invalidConfig(`${PREFIX}PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  if (config.SHADOW_ADDRESS !== "" && config.SHADOW_ADDRESS === config.MODEL_SERVICE_ADDRESS) {
    invalidConfig(
      `${PREFIX}SHADOW_ADDRESS must differ from ${PREFIX}MODEL_SERVICE_ADDRESS (mirroring to the primary)`,
    );
  }
  if (config.SHUTDOWN_DELAY_MS >= config.SHUTDOWN_TIMEOUT_MS) {
    invalidConfig(`${PREFIX}SHUTDOWN_DELAY_MS must be shorter than ${PREFIX}SHUTDOWN_TIMEOUT_MS`);
  }
  const secretProblem = feedbackSecretProblem(config.FEEDBACK_SECRET);
  if (secretProblem) {
    invalidConfig(`${PREFIX}FEEDBACK_SECRET ${secretProblem}`);
  }
  const shadows = readShadows(PREFIX, config);
  const faults = readFaults(PREFIX, config);
  if (shadows.length === 0 && (faults.delayPercent > 0 || faults.abortPercent > 0)) {
    invalidConfig(
      `${PREFIX}SHADOW_FAULT_* inject faults into local mirroring, which is off (${PREFIX}SHADOW_ADDRESS is empty and so is ${PREFIX}SHADOWS; in a cluster use Istio's VirtualService fault)`,
    );
  }
  return {
    ...config,
    SHADOWS: shadows,
    SHADOW_FAULTS: faults,
    INSTANCE: config.INSTANCE || hostname(),
    CORS_ORIGINS: parseOrigins(config.CORS_ORIGINS),
    PUBLIC_HOSTS: parsePublicHosts(config.PUBLIC_HOSTS),
  };
}

export const help = () => describeConfig(PREFIX, spec);
