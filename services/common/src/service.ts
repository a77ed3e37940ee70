import type { Registry } from "prom-client";
import { listenOn } from "./listen.js";
import { createLogger, type Logger } from "./logger.js";
import { readConfigOrExit } from "./main.js";
import { createOpsServer } from "./ops-server.js";
import { installShutdown, sleep } from "./shutdown.js";

/**
 * One skeleton for every service (docs/architecture.md, "One service skeleton").
 *
 * A service provides its parts (ServiceParts: listen, start, ready and the shutdown steps); `createService` adds the
 * ops server (/metrics, /healthz, /readyz) and runs the parts in one fixed order, the same in production (main.ts is
 * `runService`) and in tests (which call `listen`, `ready` and `stop` of the very same Service):
 *
 *     listen → start (ready)                                                            … serving …
 *     stop: [start settles] → notServing → shutdownDelayMs → drain → flush → close → ops server closed
 *
 * The drain budget is derived here, once: shutdownTimeoutMs − shutdownDelayMs − flushTimeoutMs − a margin, so that
 * the whole stop fits in the shutdown timeout whatever the service.
 */

/** Bound ports by name, e.g. `{ grpc: 43121, metrics: 39011 }`. */
export type BoundPorts = Record<string, number>;

/** What one service provides; createService runs the parts in one fixed order. */
export interface ServiceParts {
  /** Binds the service's own listeners (port 0 = any free port) and returns the bound ports by name. */
  listen(): Promise<BoundPorts>;
  /** After listening: load the model, start reporters and probes; resolves when the service can serve. */
  start?(): Promise<void>;
  /** Readiness as /readyz reports it (the skeleton also answers false once stopping). */
  ready(): boolean;
  /** Shutdown 1: health NOT_SERVING (the skeleton then waits shutdownDelayMs). */
  notServing?(): void;
  /** Shutdown 2: stop accepting, end streams, finish in-flight calls within `timeoutMs`. */
  drain?(timeoutMs: number): Promise<void>;
  /** Shutdown 3: flush queued reports within `timeoutMs` (clients are still open). */
  flush?(timeoutMs: number): Promise<void>;
  /** Shutdown 4: close clients, stores, timers. */
  close?(): Promise<void> | void;
  /** Reloads what can be reloaded (SIGHUP). */
  reload?(reason: string): Promise<unknown>;
}

export interface ServiceOptions {
  name: string;
  logger: Logger;
  registry: Registry;
  /** Address and port of the ops server (/metrics, /healthz, /readyz), and the setting that chose the port. */
  host: string;
  metricsPort: number;
  metricsPortSetting: string;
  shutdownDelayMs: number;
  shutdownTimeoutMs: number;
  /** The flush step's bound (default 0: no flush budget is reserved). */
  flushTimeoutMs?: number;
}

/** What `create(config)` returns for every service. */
export interface Service {
  /** parts.listen() and the ops server: `{ ...ports, metrics }`. Rejects with a ListenError (one line). */
  listen(): Promise<BoundPorts>;
  /** parts.start(): resolves once the service can serve. */
  ready(): Promise<void>;
  /** Graceful shutdown in the fixed order; idempotent (every call returns the same promise). */
  stop(): Promise<void>;
  /** parts.reload (SIGHUP); resolves to undefined when the service has nothing to reload. */
  reload(reason: string): Promise<unknown>;
}

/** Time kept free in the shutdown timeout for everything but drain and flush (close, ops server, exit). */
export const SHUTDOWN_MARGIN_MS = 500;

/** The drain bound: what the shutdown timeout leaves after the delay, the flush and the margin (at least 100 ms). */
export function drainBudgetMs(
  options: Pick<ServiceOptions, "shutdownTimeoutMs" | "shutdownDelayMs" | "flushTimeoutMs">,
): number {
  return Math.max(
    100,
    options.shutdownTimeoutMs - options.shutdownDelayMs - (options.flushTimeoutMs ?? 0) - SHUTDOWN_MARGIN_MS,
  );
}

export function createService(parts: ServiceParts, options: ServiceOptions): Service {
  const { logger } = options;
  let stopping = false;
  let started: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  const ops = createOpsServer({
    registry: options.registry,
    ready: () => !stopping && parts.ready(),
  });
  const drainMs = drainBudgetMs(options);

  const step = async (name: string, run: () => Promise<void> | void): Promise<void> => {
    const at = performance.now();
    try {
      await run();
      logger.debug({ step: name, ms: Math.round(performance.now() - at) }, "shutdown step done");
    } catch (error) {
      logger.error({ err: error, step: name }, "shutdown step failed");
    }
  };

  return {
    async listen() {
      const ports = await parts.listen();
      const { host, metricsPort, metricsPortSetting } = options;
      const address = await listenOn({ setting: metricsPortSetting, host, port: metricsPort }, () =>
        ops.listen(metricsPort, host),
      );
      return { ...ports, metrics: address.port };
    },

    ready() {
      started ??= stopping
        ? Promise.reject(new Error(`${options.name} is stopping`))
        : Promise.resolve().then(() => parts.start?.());
      return started;
    },

    stop() {
      stopped ??= (async () => {
        stopping = true;
        if (started) {
          // A start under way finishes first (or gives up within the drain bound), so that nothing it turns on
          // (health SERVING, a reporter) comes after the shutdown steps turned it off.
          await step("wait for start", () =>
            Promise.race([started?.catch(() => undefined), sleep(drainMs)]).then(() => undefined),
          );
        }
        await step("not serving", () => parts.notServing?.());
        await step("shutdown delay", () => sleep(options.shutdownDelayMs));
        await step("drain", () => parts.drain?.(drainMs));
        await step("flush", () => parts.flush?.(options.flushTimeoutMs ?? 0));
        await step("close", () => parts.close?.());
        await step("ops server", () => ops.close());
      })();
      return stopped;
    },

    async reload(reason) {
      return parts.reload?.(reason);
    },
  };
}

/** What a service's main.ts hands to runService. */
export interface ServiceMain<C> {
  name: string;
  /** One line: what the service is (for --help). */
  about: string;
  help(): string;
  readConfig(): C;
  logLevel(config: C): string;
  shutdownTimeoutMs(config: C): number;
  /** The configuration as it may be logged (secrets masked); the whole config by default. */
  loggable?(config: C): object;
  create(config: C, logger: Logger): Service;
}

/**
 * The exit code an error thrown by `create` asks for: a fault of the machine rather than of the settings (a data
 * directory that cannot be used, say) sets `exitCode` 1; anything else is a bad setting (2).
 */
function createExitCode(error: unknown): number {
  const code = (error as { exitCode?: unknown } | null)?.exitCode;
  return typeof code === "number" && Number.isInteger(code) && code > 0 ? code : 2;
}

/** The one line of an error, for stderr. */
function lineOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ").trim();
}

/**
 * The whole main.ts of a service: `--help`, the configuration (ConfigError → one line, exit 2), the logger, create
 * (an error → one line, exit 2, or the error's own `exitCode`), signals and the launcher watch (installShutdown) → stop(), SIGHUP → reload, listen
 * (ListenError → one line, exit 1), one structured log line `{"msg":"listening","ports":{...}}`, then ready() (an
 * error → one line, exit 1).
 */
export async function runService<C>(main: ServiceMain<C>): Promise<void> {
  const { name } = main;
  const config = readConfigOrExit(
    name,
    main.about,
    () => main.help(),
    () => main.readConfig(),
  );
  const logger = createLogger(name, main.logLevel(config));
  const fatal = (error: unknown, code: number): never => {
    const line = lineOf(error);
    logger.fatal({ err: line }, "cannot start");
    logger.flush();
    console.error(`${name}: ${line}`);
    process.exit(code);
  };
  logger.info({ config: main.loggable ? main.loggable(config) : config }, "starting");
  let service: Service;
  try {
    service = main.create(config, logger);
  } catch (error) {
    return fatal(error, createExitCode(error));
  }
  let stopping = false;
  const stop = () => {
    stopping = true;
    return service.stop();
  };
  installShutdown(logger, [{ name: "graceful stop", run: stop }], main.shutdownTimeoutMs(config));
  process.on("SIGHUP", () => {
    service.reload("SIGHUP").catch((error: unknown) => logger.error({ err: error }, "reload failed"));
  });
  let ports: BoundPorts;
  try {
    ports = await service.listen();
  } catch (error) {
    return fatal(error, 1);
  }
  if (stopping) return;
  logger.info({ ports }, "listening");
  try {
    await service.ready();
  } catch (error) {
    // A signal during the start: the shutdown under way decides the exit code, not the start it cut short.
    if (!stopping) fatal(error, 1);
  }
}
