import {
  cleanEnv,
  EnvError,
  EnvMissingError,
  num,
  type ReporterOptions,
  type Spec,
  str,
  type ValidatorSpec,
} from "envalid";

export { bool, host, num, port, str, url } from "envalid";

/**
 * Service configuration from environment variables.
 *
 * Every service reads its settings from variables with one prefix (MODEL_SERVICE_, APP_SERVICE_, METRICS_SERVICE_).
 * Every setting has a default and one line of help (`desc`); a bad value or a bad combination stops the service at
 * start with one readable line (ConfigError), and `--help` prints the table of settings.
 */

/** A readable, one-line configuration error. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Specs = Record<string, ValidatorSpec<unknown>>;

/** Reads `spec` (keys without the prefix) from `env` under `prefix`; throws a ConfigError listing every problem. */
export function loadConfig<S extends Specs>(
  prefix: string,
  spec: S,
  env: NodeJS.ProcessEnv = process.env,
): { readonly [K in keyof S]: S[K] extends ValidatorSpec<infer T> ? T : never } {
  const prefixed: Record<string, Spec<unknown>> = {};
  for (const [key, validator] of Object.entries(spec)) {
    prefixed[`${prefix}${key}`] = validator;
  }
  const cleaned = cleanEnv(env, prefixed as Record<string, ValidatorSpec<unknown>>, {
    reporter: ({ errors }: ReporterOptions<Record<string, unknown>>) => {
      const problems = Object.entries(errors).map(([name, error]) =>
        error instanceof EnvMissingError
          ? `${name} is required`
          : `${name}: ${error instanceof EnvError || error instanceof Error ? error.message : String(error)}`,
      );
      if (problems.length > 0) {
        throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
      }
    },
  }) as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(spec)) {
    result[key] = cleaned[`${prefix}${key}`];
  }
  return result as { readonly [K in keyof S]: S[K] extends ValidatorSpec<infer T> ? T : never };
}

/** One line per setting: name, default and help, for `--help` and the README. */
export function describeConfig(prefix: string, spec: Specs): string {
  const rows = Object.entries(spec).map(([key, validator]) => {
    const def = validator.default === undefined ? "(required)" : JSON.stringify(validator.default);
    return `  ${`${prefix}${key}`.padEnd(44)} ${def.padEnd(22)} ${validator.desc ?? ""}`;
  });
  return ["Settings (environment variables):", ...rows].join("\n");
}

/** The log level setting every service has. */
export const logLevel = () =>
  str({
    choices: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    default: "info",
    desc: "pino log level; per-request lines are debug.",
  });

/** The graceful-shutdown settings every service has (see installShutdown). */
export const shutdownSpec = () => ({
  SHUTDOWN_TIMEOUT_MS: num({
    default: 10_000,
    desc: "Longest a graceful shutdown may take before exiting anyway.",
  }),
  SHUTDOWN_DELAY_MS: num({
    default: 0,
    desc: "Pause between reporting not-ready and closing the port (let load balancers notice; 5000 in k8s).",
  }),
});

/** The settings as a Markdown table (for READMEs), from the same spec that `--help` prints. */
export function settingsTable(prefix: string, spec: Specs): string {
  const rows = Object.entries(spec).map(([key, validator]) => {
    const value = validator.default === undefined ? "(required)" : JSON.stringify(validator.default);
    return `| \`${prefix}${key}\` | \`${value}\` | ${(validator.desc ?? "").replaceAll("|", "\\|")} |`;
  });
  return ["| Setting | Default | Description |", "| --- | --- | --- |", ...rows].join("\n");
}
