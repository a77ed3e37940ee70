import { ConfigError, describeConfig, loadConfig, num, port, str } from "@shadowmesh/common";

/** Every setting of metrics-service: one env prefix, a default and one line of help each. */
export const PREFIX = "METRICS_SERVICE_";

export const spec = {
  HOST: str({ default: "127.0.0.1", desc: "Address the gRPC and metrics ports bind to (0.0.0.0 in a container)." }),
  GRPC_PORT: port({ default: 50053, desc: "gRPC (h2c) port serving MetricsService, health and reflection." }),
  METRICS_PORT: port({ default: 9103, desc: "HTTP port serving /metrics, /healthz and /readyz." }),
  LOG_LEVEL: str({
    choices: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    default: "info",
    desc: "pino log level; per-request lines are debug.",
  }),
  SHUTDOWN_TIMEOUT_MS: num({ default: 10_000, desc: "Longest a graceful shutdown may take before exiting anyway." }),
  SHUTDOWN_DELAY_MS: num({
    default: 0,
    desc: "Pause between reporting NOT_SERVING and closing the port (let load balancers notice; 5000 in k8s).",
  }),
};

export type Config = ReturnType<typeof readConfig>;

export function readConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(PREFIX, spec, env);
  if (config.GRPC_PORT !== 0 && config.GRPC_PORT === config.METRICS_PORT) {
    throw new ConfigError(`invalid configuration: ${PREFIX}GRPC_PORT and ${PREFIX}METRICS_PORT must differ`);
  }
  return config;
}

export const help = () => describeConfig(PREFIX, spec);
