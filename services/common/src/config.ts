import {
  cleanEnv,
  EnvError,
  EnvMissingError,
  type ReporterOptions,
  type Spec,
  type ValidatorSpec,
} from "envalid";

/**
 * Service configuration from environment variables.
 *
 * Every service reads its settings from variables with one prefix (MODEL_SERVICE_, APP_SERVICE_, METRICS_SERVICE_).
 * Every setting has a default and one line of help (`desc`); a bad value or a bad combination stops the service at
 * start with one readable line (ConfigError), and `--help` prints the table of settings.
 *
 * The vocabulary below (`int`, `port`, `ms`, `num`, `ratio`, `percent`, `hostPort`, `bool`, `str`, `oneOf`) is the
 * only place where a rule is written: each validator knows its rule, checks it, says it the same way in every
 * error ("MODEL_SERVICE_GRPC_PORT must be an integer from 0 to 65535, got "x"") and shows it in `--help` and the
 * READMEs' settings tables (the Values column). Rules between settings stay in each service's `readConfig`.
 */

/** A readable, one-line configuration error. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A setting: envalid's spec plus the rule it checks, in words (for `--help`). */
export type Setting<T> = ValidatorSpec<T> & { readonly rule?: string };

type Specs = Record<string, ValidatorSpec<unknown>>;

/** The value type of a setting. */
export type SettingValue<S> = S extends ValidatorSpec<infer T> ? T : never;

/** Thrown by a setting's parser; the message starts with "must …" and is prefixed with the setting's name. */
class RuleError extends EnvError {}

interface Common<T> {
  default?: T;
  desc: string;
}

function setting<T>(rule: string, parse: (input: string) => T, options: Common<T>): Setting<T> {
  const spec = {
    _parse: parse,
    desc: options.desc,
    rule,
    ...(options.default === undefined ? {} : { default: options.default }),
  };
  return spec as unknown as Setting<T>;
}

const shown = (input: string) => JSON.stringify(input);

function range(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  if (min !== undefined) return min === 0 ? "≥ 0" : `≥ ${min}`;
  if (max !== undefined) return `≤ ${max}`;
  return "";
}

/** A decimal number as people write it (no hex, no "Infinity", no empty string). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numberParser(kind: "an integer" | "a number", min?: number, max?: number, above?: number) {
  // Integers: "an integer from 1 to 10"; numbers in a closed range: "between 0 and 100" (decimals allowed).
  const words =
    above !== undefined
      ? `${kind} above ${above}${max !== undefined ? ` and at most ${max}` : ""}`
      : kind === "a number" && min !== undefined && max !== undefined
        ? `between ${min} and ${max}`
        : [kind, range(min, max)].filter(Boolean).join(" ");
  return (input: string): number => {
    const text = input.trim();
    const value = DECIMAL.test(text) ? Number(text) : Number.NaN;
    const ok =
      Number.isFinite(value) &&
      (kind === "a number" || Number.isInteger(value)) &&
      (min === undefined || value >= min) &&
      (max === undefined || value <= max) &&
      (above === undefined || value > above);
    if (!ok) {
      throw new RuleError(`must be ${words}, got ${shown(input)}`);
    }
    return value;
  };
}

function ruleOf(kind: string, min?: number, max?: number, above?: number): string {
  return [kind, above !== undefined ? `> ${above}` : "", range(min, max)].filter(Boolean).join(" ");
}

/** An integer, optionally bounded (`min`, `max` inclusive). */
export function int(options: Common<number> & { min?: number; max?: number }): Setting<number> {
  const { min, max } = options;
  return setting(ruleOf("integer", min, max), numberParser("an integer", min, max), options);
}

/** A duration in ms: an integer ≥ `min` (default 0). */
export function ms(options: Common<number> & { min?: number; max?: number }): Setting<number> {
  const min = options.min ?? 0;
  return setting(
    `${ruleOf("integer", min, options.max)} ms`,
    numberParser("an integer", min, options.max),
    options,
  );
}

/** A TCP port, 0 to 65535 (0: any free port; the bound port is logged). */
export function port(options: Common<number>): Setting<number> {
  return setting("port 0 to 65535", numberParser("an integer", 0, 65_535), options);
}

/** A finite number, optionally bounded (`min`, `max` inclusive; `above` exclusive). */
export function num(
  options: Common<number> & { min?: number; max?: number; above?: number },
): Setting<number> {
  const { min, max, above } = options;
  return setting(ruleOf("number", min, max, above), numberParser("a number", min, max, above), options);
}

/** A share from 0 to 1. */
export function ratio(options: Common<number>): Setting<number> {
  return setting("0 to 1", numberParser("a number", 0, 1), options);
}

/** A percentage from 0 to 100 (`above0`: 0 refused). */
export function percent(options: Common<number> & { above0?: boolean }): Setting<number> {
  return options.above0
    ? setting("> 0 to 100", numberParser("a number", undefined, 100, 0), options)
    : setting("0 to 100", numberParser("a number", 0, 100), options);
}

/** host or IP (IPv6 in brackets), a colon and a port. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/;

/** `host:port` (trimmed); with `optional`, also empty (meaning: off). */
export function hostPort(options: Common<string> & { optional?: boolean }): Setting<string> {
  return setting(
    options.optional ? "host:port or empty" : "host:port",
    (input) => {
      const value = input.trim();
      if (
        (options.optional && value === "") ||
        (HOST_PORT.test(value) && Number(value.split(":").pop()) <= 65_535)
      ) {
        return value;
      }
      throw new RuleError(`must be host:port${options.optional ? " or empty" : ""}, got ${shown(input)}`);
    },
    options,
  );
}

/** true/false (also 1/0, yes/no, on/off). */
export function bool(options: Common<boolean>): Setting<boolean> {
  return setting(
    "true or false",
    (input) => {
      const value = input.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(value)) return true;
      if (["false", "0", "no", "off"].includes(value)) return false;
      throw new RuleError(`must be true or false, got ${shown(input)}`);
    },
    options,
  );
}

/** One of a fixed list of strings (exact spelling). */
export function oneOf<const T extends string>(choices: readonly T[], options: Common<T>): Setting<T> {
  return setting(
    choices.join(", "),
    (input) => {
      if ((choices as readonly string[]).includes(input)) return input as T;
      throw new RuleError(`must be one of ${choices.join(", ")}, got ${shown(input)}`);
    },
    options,
  );
}

/** Any string; with `choices` it is a oneOf (kept for envalid-style callers). */
export function str(options: Common<string>): Setting<string>;
export function str<const T extends string>(options: Common<T> & { choices: readonly T[] }): Setting<T>;
export function str(options: Common<string> & { choices?: readonly string[] }): Setting<string> {
  if (options.choices) {
    return oneOf(options.choices, options);
  }
  return setting("", (input) => input, options);
}

/** Reads `spec` (keys without the prefix) from `env` under `prefix`; throws a ConfigError listing every problem. */
export function loadConfig<S extends Specs>(
  prefix: string,
  spec: S,
  env: NodeJS.ProcessEnv = process.env,
): { readonly [K in keyof S]: SettingValue<S[K]> } {
  const prefixed: Record<string, Spec<unknown>> = {};
  for (const [key, validator] of Object.entries(spec)) {
    prefixed[`${prefix}${key}`] = validator;
  }
  const cleaned = cleanEnv(env, prefixed as Record<string, ValidatorSpec<unknown>>, {
    reporter: ({ errors }: ReporterOptions<Record<string, unknown>>) => {
      const problems = Object.entries(errors).map(([name, error]) => {
        if (error instanceof EnvMissingError) return `${name} is required`;
        if (error instanceof RuleError) return `${name} ${error.message}`;
        return `${name}: ${error instanceof Error ? error.message : String(error)}`;
      });
      if (problems.length > 0) {
        throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
      }
    },
  }) as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(spec)) {
    result[key] = cleaned[`${prefix}${key}`];
  }
  return result as { readonly [K in keyof S]: SettingValue<S[K]> };
}

/** Throws the one-line ConfigError for a rule between settings (`message` names them). */
export function invalidConfig(message: string): never {
  throw new ConfigError(`invalid configuration: ${message}`);
}

const ruleText = (validator: ValidatorSpec<unknown>) => (validator as Setting<unknown>).rule ?? "";

/** One line per setting: name, default, allowed values and help, for `--help`. */
export function describeConfig(prefix: string, spec: Specs): string {
  const rows = Object.entries(spec).map(([key, validator]) => {
    const def = validator.default === undefined ? "(required)" : JSON.stringify(validator.default);
    const rule = ruleText(validator);
    return `  ${`${prefix}${key}`.padEnd(44)} ${def.padEnd(22)} ${validator.desc ?? ""}${rule ? ` [${rule}]` : ""}`;
  });
  return ["Settings (environment variables):", ...rows].join("\n");
}

/** The log level setting every service has. */
export const logLevel = () =>
  oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
    default: "info",
    desc: "pino log level; per-request lines are debug.",
  });

/** The graceful-shutdown settings every service has (see createService). */
export const shutdownSpec = () => ({
  SHUTDOWN_TIMEOUT_MS: ms({
    min: 1,
    default: 10_000,
    desc: "Longest a graceful shutdown may take before exiting anyway.",
  }),
  SHUTDOWN_DELAY_MS: ms({
    default: 0,
    desc: "Pause between reporting not-ready and closing the port (let load balancers notice; 5000 in k8s).",
  }),
});

/** The settings as a Markdown table (for READMEs), from the same spec that `--help` prints. */
export function settingsTable(prefix: string, spec: Specs): string {
  const rows = Object.entries(spec).map(([key, validator]) => {
    const value = validator.default === undefined ? "(required)" : JSON.stringify(validator.default);
    const cell = (text: string) => text.replaceAll("|", "\\|");
    return `| \`${prefix}${key}\` | \`${value}\` | ${cell(ruleText(validator))} | ${cell(validator.desc ?? "")} |`;
  });
  return ["| Setting | Default | Values | Description |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
