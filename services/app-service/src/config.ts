import { ConfigError, describeConfig, loadConfig, num, port, str } from "@shadowmesh/common";

/** Every setting of app-service: one env prefix, a default and one line of help each. */
export const PREFIX = "APP_SERVICE_";

export const spec = {
  HOST: str({ default: "127.0.0.1", desc: "Address the HTTP and metrics ports bind to (0.0.0.0 in a container)." }),
  PORT: port({ default: 8080, desc: "HTTP/1.1 port serving Connect, gRPC-web and the web app." }),
  METRICS_PORT: port({ default: 9100, desc: "HTTP port serving /metrics, /healthz and /readyz." }),
  MODEL_SERVICE_ADDRESS: str({ default: "127.0.0.1:50051", desc: "host:port of the primary model-service (gRPC)." }),
  METRICS_SERVICE_ADDRESS: str({ default: "127.0.0.1:50053", desc: "host:port of metrics-service (gRPC)." }),
  LOG_LEVEL: str({
    choices: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    default: "info",
    desc: "pino log level; per-request lines are debug.",
  }),
  SHUTDOWN_TIMEOUT_MS: num({ default: 10_000, desc: "Longest a graceful shutdown may take before exiting anyway." }),
  SHUTDOWN_DELAY_MS: num({
    default: 0,
    desc: "Pause between reporting not-ready and closing the port (let load balancers notice; 5000 in k8s).",
  }),
};

export type Config = ReturnType<typeof readConfig>;

export function readConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(PREFIX, spec, env);
  if (config.PORT !== 0 && config.PORT === config.METRICS_PORT) {
    throw new ConfigError(`invalid configuration: ${PREFIX}PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  return config;
}

export const help = () => describeConfig(PREFIX, spec);
